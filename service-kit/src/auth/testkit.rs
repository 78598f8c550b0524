//! Keys and token builders for the auth tests. The RSA pair under `testdata/` was made for these
//! tests only (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`) and guards nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;

pub(crate) const SECRET: &str = "test-secret-with-at-least-32-bytes!";
pub(crate) const SECRET_OTHER: &str = "another-secret-with-32-bytes-or-more";
pub(crate) const RSA_PUBLIC_PEM: &str = include_str!("testdata/test-only-rsa-public.pem");
pub(crate) const RSA_PRIVATE_PEM: &str = include_str!("testdata/test-only-rsa-private.pem");

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

pub(crate) fn hs256_token(secret: &str, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing")
}

pub(crate) fn rs256_token(claims: &serde_json::Value) -> String {
    let private_key = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PRIVATE_PEM).expect("test private key");
    let der = private_key.to_pkcs1_der().expect("PKCS#1 encoding");
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_der(der.as_bytes()),
    )
    .expect("RS256 signing")
}

/// A token with any header and a raw (base64url) signature, for what no honest signer makes.
pub(crate) fn token_with_header(header: &serde_json::Value, claims: &serde_json::Value, signature: &str) -> String {
    let encode = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.{signature}", encode(header), encode(claims))
}
