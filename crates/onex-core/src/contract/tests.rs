//! Loader tests over the shared fixtures and inline contracts.
