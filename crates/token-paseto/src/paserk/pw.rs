//! PASERK `pw` (in progress).
