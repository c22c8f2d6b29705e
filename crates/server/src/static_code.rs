//! STATIC Friend Verification Codes: chosen by the user, stored only as an Argon2id hash. Checking
//! always runs one Argon2 verification — against a throwaway hash when the account has no static code
//! — so the time a lookup takes does not say which kind of code an account uses.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// 2 MiB, two passes: about a millisecond per check. It runs on every gated request, whose rate the
/// token buckets bound; a 6+ character code's real protection is that rate, not the hash cost.
fn argon2() -> Argon2<'static> {
    let params = Params::new(2048, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Static codes: 6 to 32 letters and digits; compared case-blind.
pub fn normalize(code: &str) -> Option<String> {
    let c: String = code.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let ok = (6..=32).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| c.to_ascii_uppercase())
}

pub fn hash(code: &str) -> Option<String> {
    let code = normalize(code)?;
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()
        .hash_password(code.as_bytes(), &salt)
        .ok()
        .map(|h| h.to_string())
}

fn dummy() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("NOTACODE00").unwrap_or_default())
}

/// Whether `code` matches `stored` (a PHC string). With no stored hash, the same work is done
/// against a throwaway one and the answer is `false`.
pub fn check(code: &str, stored: Option<&str>) -> bool {
    let given = normalize(code).unwrap_or_default();
    let (phc, real) = match stored {
        Some(s) => (s, true),
        None => (dummy(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let matched = argon2().verify_password(given.as_bytes(), &parsed).is_ok();
    real && matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_never_hold_the_code() {
        let h = hash("Blue-Horse-42").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.to_uppercase().contains("BLUEHORSE42"));
        assert!(check("bluehorse42", Some(&h)));
        assert!(!check("bluehorse43", Some(&h)));
        assert!(
            !check("NOTACODE00", None),
            "the throwaway hash never opens anything"
        );
        assert!(hash("short").is_none());
    }
}
