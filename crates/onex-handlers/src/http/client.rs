//! Building `reqwest` clients: the one place the TLS crypto provider is installed.
//!
//! reqwest is built with `rustls-tls-webpki-roots-no-provider`, so no crypto
//! backend is compiled in behind our back; rustls then needs a process-wide
//! default provider, and reqwest panics when it builds a client without one.
//! [`builder`] installs ring's provider the first time any client is built
//! (the http, consul and vault clients all come through here). When the embedding
//! application installed a provider of its own first, that one is kept.

use std::sync::Once;

/// A client builder, with the TLS crypto provider installed. Any other
/// `reqwest` client in the process (tests, benchmarks) should start here too.
pub fn builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means a provider is installed already (by the application): keep it.
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
    });
}
