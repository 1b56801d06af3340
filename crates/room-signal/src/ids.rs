//! Identifier rules of the contract: room IDs, user IDs, user names, stream IDs
//! and room extra-info keys. Each check returns the contract's specific code.

use crate::error::{code, Result, SignalError};

pub const MAX_ROOM_ID: usize = 128;
pub const MAX_USER_ID: usize = 64;
/// The userID the server acts as in rooms (admin API); no client may use it.
pub const SERVER_USER_ID: &str = "$server";
pub const MAX_USER_NAME: usize = 256;
pub const MAX_STREAM_ID: usize = 256;

fn has_illegal(s: &str) -> bool {
    s.chars().any(|c| c == '/' || c == ':' || c.is_control())
}

pub fn room_id(s: &str) -> Result<()> {
    if s.is_empty() {
        Err(SignalError::new(code::ROOM_ID_EMPTY, "roomID is empty"))
    } else if s.len() > MAX_ROOM_ID {
        Err(SignalError::new(
            code::ROOM_ID_TOO_LONG,
            format!("roomID longer than {MAX_ROOM_ID} bytes"),
        ))
    } else if has_illegal(s) {
        Err(SignalError::new(
            code::ROOM_ID_ILLEGAL,
            "roomID contains '/', ':' or a control character",
        ))
    } else {
        Ok(())
    }
}

pub fn user_id(s: &str) -> Result<()> {
    if s.is_empty() {
        Err(SignalError::new(code::USER_ID_EMPTY, "userID is empty"))
    } else if s.len() > MAX_USER_ID {
        Err(SignalError::new(
            code::USER_ID_TOO_LONG,
            format!("userID longer than {MAX_USER_ID} bytes"),
        ))
    } else if has_illegal(s) {
        Err(SignalError::new(
            code::USER_ID_ILLEGAL,
            "userID contains '/', ':' or a control character",
        ))
    } else if s == SERVER_USER_ID {
        Err(SignalError::new(
            code::USER_ID_ILLEGAL,
            "userID `$server` is reserved for the server",
        ))
    } else {
        Ok(())
    }
}

pub fn user_name(s: &str) -> Result<()> {
    if s.len() > MAX_USER_NAME {
        Err(SignalError::new(
            code::USER_NAME_TOO_LONG,
            format!("userName longer than {MAX_USER_NAME} bytes"),
        ))
    } else {
        Ok(())
    }
}

pub fn stream_id(s: &str) -> Result<()> {
    if s.is_empty() {
        Err(SignalError::new(code::STREAM_ID_EMPTY, "streamID is empty"))
    } else if s.chars().count() > MAX_STREAM_ID {
        Err(SignalError::new(
            code::STREAM_ID_TOO_LONG,
            format!("streamID longer than {MAX_STREAM_ID} characters"),
        ))
    } else if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Err(SignalError::new(
            code::STREAM_ID_ILLEGAL,
            "streamID may only contain A-Z, a-z, 0-9, '_' and '-'",
        ))
    } else {
        Ok(())
    }
}

/// Target user IDs of a custom command: `1009011` empty, `1009012` too long.
pub fn command_target(s: &str) -> Result<()> {
    if s.is_empty() {
        Err(SignalError::new(
            code::TARGET_EMPTY,
            "a target userID is empty",
        ))
    } else if s.len() > MAX_USER_ID {
        Err(SignalError::new(
            code::TARGET_TOO_LONG,
            format!("a target userID is longer than {MAX_USER_ID} bytes"),
        ))
    } else {
        Ok(())
    }
}

/// Message, barrage and command bodies: 1–1024 UTF-8 bytes.
pub fn message_body(s: &str, max: usize) -> Result<()> {
    if s.is_empty() {
        Err(SignalError::new(code::MESSAGE_EMPTY, "message is empty"))
    } else if s.len() > max {
        Err(SignalError::new(
            code::MESSAGE_TOO_LONG,
            format!("message longer than {max} bytes"),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids() {
        assert!(room_id("r1").is_ok());
        assert_eq!(room_id("").unwrap_err().code, code::ROOM_ID_EMPTY);
        assert_eq!(room_id("a/b").unwrap_err().code, code::ROOM_ID_ILLEGAL);
        assert_eq!(room_id("a:b").unwrap_err().code, code::ROOM_ID_ILLEGAL);
        assert_eq!(room_id("a\nb").unwrap_err().code, code::ROOM_ID_ILLEGAL);
        assert!(room_id(&"x".repeat(128)).is_ok());
        assert_eq!(
            room_id(&"x".repeat(129)).unwrap_err().code,
            code::ROOM_ID_TOO_LONG
        );
    }

    #[test]
    fn user_ids_and_names() {
        assert!(user_id("alice").is_ok());
        assert_eq!(user_id("").unwrap_err().code, code::USER_ID_EMPTY);
        assert_eq!(user_id("a\u{7}").unwrap_err().code, code::USER_ID_ILLEGAL);
        assert_eq!(user_id("$server").unwrap_err().code, code::USER_ID_ILLEGAL);
        assert!(user_id("$server2").is_ok());
        assert_eq!(
            user_id(&"é".repeat(33)).unwrap_err().code,
            code::USER_ID_TOO_LONG
        );
        assert!(user_name("").is_ok());
        assert_eq!(
            user_name(&"n".repeat(257)).unwrap_err().code,
            code::USER_NAME_TOO_LONG
        );
    }

    #[test]
    fn stream_ids() {
        assert!(stream_id("cam_1-A").is_ok());
        assert_eq!(stream_id("").unwrap_err().code, code::STREAM_ID_EMPTY);
        assert_eq!(stream_id("a b").unwrap_err().code, code::STREAM_ID_ILLEGAL);
        assert_eq!(stream_id("é").unwrap_err().code, code::STREAM_ID_ILLEGAL);
        assert!(stream_id(&"s".repeat(256)).is_ok());
        assert_eq!(
            stream_id(&"s".repeat(257)).unwrap_err().code,
            code::STREAM_ID_TOO_LONG
        );
    }

    #[test]
    fn bodies() {
        assert_eq!(
            message_body("", 1024).unwrap_err().code,
            code::MESSAGE_EMPTY
        );
        assert!(message_body(&"m".repeat(1024), 1024).is_ok());
        assert_eq!(
            message_body(&"m".repeat(1025), 1024).unwrap_err().code,
            code::MESSAGE_TOO_LONG
        );
    }
}
