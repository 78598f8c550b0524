//! Webhook secrets and signatures, as the Standard Webhooks specification writes them: the
//! secret is `whsec_` and the base64 of 32 random bytes, those bytes are the HMAC-SHA256 key,
//! and `webhook-signature` is `v1,` and the base64 of the MAC of `{id}.{timestamp}.{body}`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;
use uuid::Uuid;

/// Length of a signing key in bytes.
pub const KEY_LEN: usize = 32;
const PREFIX: &str = "whsec_";

/// A webhook's signing key. Never in `Debug` or a log line; shown to its owner once, at
/// registration, as [`WebhookSecret::encoded`].
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret([u8; KEY_LEN]);

impl WebhookSecret {
    /// A fresh key from the operating system's random source (through a CSPRNG seeded by it).
    pub fn generate() -> Self {
        let mut key = [0; KEY_LEN];
        rand::thread_rng().fill_bytes(&mut key);
        Self(key)
    }

    /// The key as stored; `None` unless it has exactly [`KEY_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// A secret as its owner holds it (`whsec_...`).
    pub fn parse(encoded: &str) -> Option<Self> {
        let key = STANDARD.decode(encoded.strip_prefix(PREFIX)?).ok()?;
        Self::from_bytes(&key)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// What the owner is given: `whsec_` and the key in base64.
    pub fn encoded(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(self.0))
    }

    /// The `webhook-signature` header value for message `id`, sent at unix `timestamp` with `body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        sign(&self.0, id, timestamp, body)
    }
}

/// The signature with any `key`: the specification allows keys of other lengths than ours.
fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// The `webhook-id` of the delivery of event `event_id` to webhook `webhook_id`: the same on
/// every retry, so a receiver can recognise a message it has already processed.
pub fn message_id(webhook_id: Uuid, event_id: Uuid) -> String {
    format!("msg_{}", Uuid::new_v5(&webhook_id, event_id.as_bytes()).simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_specification_example() {
        // The example of the Standard Webhooks reference libraries (its key is 24 bytes long).
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("base64");
        let signature = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_generated_secret_reads_back_and_differs_from_the_next() {
        let secret = WebhookSecret::generate();
        let encoded = secret.encoded();
        assert!(encoded.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&encoded), Some(secret.clone()));
        assert_ne!(WebhookSecret::generate(), secret);
        assert_eq!(format!("{secret:?}"), "WebhookSecret(..)");
    }

    #[test]
    fn the_message_id_is_stable_per_webhook_and_event() {
        let (webhook, event) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(message_id(webhook, event), message_id(webhook, event));
        assert_ne!(message_id(webhook, event), message_id(Uuid::from_u128(3), event));
        assert_ne!(message_id(webhook, event), message_id(webhook, Uuid::from_u128(3)));
    }
}
