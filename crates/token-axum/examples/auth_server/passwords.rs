//! Password hashing (Argon2id) with bounded, reused working memory.

use super::*;

pub(crate) fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    }))
}

pub(crate) fn hash_password(password: &[u8]) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    // Argon2id, version 0x13, the crate's defaults (19 MiB, 2 passes, 1 lane).
    Ok(Argon2::default()
        .hash_password(password, &salt)
        .map_err(|e| anyhow::anyhow!("password hash: {e}"))?
        .to_string())
}

/// Whether `password` matches the PHC string `hash`, computed in `memory` (grown to what
/// the hash's parameters need) and compared in constant time.
pub(crate) fn password_matches(hash: &str, password: &[u8], memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (&parsed.hash, &parsed.salt) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let mut out = [0u8; 64];
    let (Ok(salt), Some(out)) = (
        salt.decode_b64(&mut salt_bytes),
        out.get_mut(..expected.len()),
    ) else {
        return false;
    };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::new());
    }
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, memory.as_mut_slice())
        .is_ok()
        && Output::new(out).is_ok_and(|computed| computed == *expected)
}

/// Argon2id working memory (19 MiB a check), kept for the next check: at most one
/// per concurrent check. Allocating it afresh for every login makes the allocator,
/// once such blocks come from its heap, keep more and more of them resident between
/// smaller allocations — the resident set then grows with the number of logins,
/// however few run at once.
pub(crate) struct Argon2Memory {
    pub(crate) free: Mutex<Vec<Vec<Block>>>,
    pub(crate) max: usize,
}

impl Argon2Memory {
    pub(crate) fn take(&self) -> Vec<Block> {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    pub(crate) fn give_back(&self, memory: Vec<Block>) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < self.max {
            free.push(memory);
        }
    }
}
