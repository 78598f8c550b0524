//! Who a token stands for: the user id its `sub` names, decided in this one place.
//!
//! User ids are UUIDs; an identity provider's subjects are strings. A subject that is a UUID in
//! its canonical form (lowercase, hyphenated) is that user id; any other subject maps to the
//! UUID v5 of its bytes under a fixed namespace, so the same subject always names the same user
//! and no two subjects share one.

use uuid::Uuid;

use super::Claims;

/// Namespace of the user ids derived from subjects that are not UUIDs.
const SUBJECT_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7273_7472_6561_6d2d_7375_6201);

/// The user id `sub` names: the subject itself when it is a canonical UUID, else the UUID v5 of
/// the subject. Only the canonical spelling counts as a UUID, so `urn:uuid:…` or an uppercase
/// spelling of a user's id is another subject, not that user.
pub fn user_id_of(sub: &str) -> Uuid {
    match Uuid::try_parse(sub) {
        Ok(id) if id.hyphenated().to_string() == sub => id,
        _ => Uuid::new_v5(&SUBJECT_NAMESPACE, sub.as_bytes()),
    }
}

impl Claims {
    /// The user this token acts as (see [`user_id_of`]).
    pub fn user_id(&self) -> Uuid {
        user_id_of(&self.sub)
    }

    /// Whether the token may act for `user_id`: it is the caller's own, or the token carries
    /// `staff_scope`, the scope that acts across users.
    pub fn may_act_for(&self, user_id: Uuid, staff_scope: &str) -> bool {
        user_id == self.user_id() || self.has_scope(staff_scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canonical_uuid_subject_is_the_user_id() {
        let id = "4f8e3c79-9a0f-4a02-823b-9c6a21f46ad8";
        assert_eq!(user_id_of(id), id.parse::<Uuid>().unwrap());
    }

    #[test]
    fn other_subjects_map_to_a_stable_v5_id() {
        let alice = user_id_of("alice@example.com");
        assert_eq!(alice, user_id_of("alice@example.com"));
        assert_eq!(alice.get_version_num(), 5);
        assert_ne!(alice, user_id_of("bob@example.com"));
        // Other spellings of a UUID are other subjects, not that user.
        let id = "4f8e3c79-9a0f-4a02-823b-9c6a21f46ad8";
        for other in [
            "4F8E3C79-9A0F-4A02-823B-9C6A21F46AD8",
            "urn:uuid:4f8e3c79-9a0f-4a02-823b-9c6a21f46ad8",
            "4f8e3c799a0f4a02823b9c6a21f46ad8",
        ] {
            assert_ne!(user_id_of(other), user_id_of(id), "{other}");
            assert_eq!(user_id_of(other).get_version_num(), 5);
        }
    }
}
