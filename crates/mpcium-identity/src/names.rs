//! Which names may become part of a file name.

use crate::error::IdentityError;

/// Node and initiator names: non-empty, no path separators, not `.`/`..`, no control
/// characters, so `<dir>/<name>…` stays inside `<dir>` (the original's `SafePath` check).
pub fn validate_file_name_part(name: &str) -> Result<(), IdentityError> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name == "." || name == ".." {
        Some("must not be `.` or `..`")
    } else if name.contains(['/', '\\']) {
        Some("must not contain a path separator")
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(IdentityError::InvalidName { name: name.to_owned(), reason: reason.to_owned() }),
        None => Ok(()),
    }
}

/// Authorizer names: `^[a-zA-Z0-9_-]+$` (the original's rule).
pub fn validate_authorizer_name(name: &str) -> Result<(), IdentityError> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        Ok(())
    } else {
        Err(IdentityError::InvalidName {
            name: name.to_owned(),
            reason: "only letters, digits, `_` and `-` are allowed".to_owned(),
        })
    }
}
