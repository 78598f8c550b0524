//! Card fingerprints: the same card gives the same fingerprint, so purchases by one card can be
//! linked, while the number cannot be recovered without the key (keyed HMAC-SHA256, unlike a
//! plain hash that a table of all card numbers would reverse).

use domain::card::CardNumber;
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Clone)]
pub struct Fingerprinter {
    key: Vec<u8>,
}

impl std::fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fingerprinter { key: <redacted> }")
    }
}

impl Fingerprinter {
    pub fn new(key: &str) -> Self {
        Self {
            key: key.as_bytes().to_vec(),
        }
    }

    /// Lower-case hex of HMAC-SHA256(key, digits).
    pub fn of(&self, number: &CardNumber) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(number.digits().as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// Lower-case hex of HMAC-SHA256(key, route and body) of a command request: tells two
    /// requests apart without putting their bodies, which may hold a card, on the log.
    pub fn of_request(&self, route: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        // A label keeps these digests from ever equalling a card fingerprint.
        mac.update(b"orderstream request\n");
        mac.update(route.as_bytes());
        mac.update(b"\n");
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_card_same_fingerprint_other_key_other_fingerprint() {
        let card = CardNumber::parse("card_number", "4242 4242 4242 4242").unwrap();
        let same = CardNumber::parse("card_number", "4242424242424242").unwrap();
        let a = Fingerprinter::new("key-a");
        assert_eq!(a.of(&card), a.of(&same));
        assert_ne!(a.of(&card), Fingerprinter::new("key-b").of(&card));
        assert_eq!(a.of(&card).len(), 64);
        assert!(!a.of(&card).contains("4242"));
    }
}
