//! Size limits. Both sides enforce them; anything larger is refused before it is parsed.

/// Largest client↔server WebSocket message (JSON text).
pub const MAX_WS_MESSAGE: usize = 64 * 1024;
/// Largest relayed blob (decoded bytes). SDP offers with a certificate fit with room to spare.
pub const MAX_RELAY_BLOB: usize = 32 * 1024;
/// Largest frame on the peer data channel (an Olm message, encoded).
pub const MAX_PEER_FRAME: usize = 64 * 1024;
/// Longest attachment file name, in bytes of UTF-8.
pub const MAX_FILE_NAME: usize = 255;
/// Longest attachment media type.
pub const MAX_MIME: usize = 100;
/// Auto-delete timers a chat may agree on, in seconds (0: off).
pub const TIMER_CHOICES: [u32; 5] = [0, 5, 60, 3600, 86400];
/// Longest text message body, in bytes of UTF-8.
pub const MAX_TEXT: usize = 16 * 1024;
/// Most one-time keys a device may have on the server at once.
pub const MAX_ONE_TIME_KEYS: usize = 50;
/// Largest HTTP request body (registration).
pub const MAX_HTTP_BODY: usize = 16 * 1024;

/// How long after signing an account's deletion it may still be sent without a session
/// (`POST /v1/delete`): a week, the longest a burner lives, twice over. A client drops a kept
/// deletion older than this.
pub const DELETION_RESEND_SECS: u64 = 14 * 86_400;

#[cfg(test)]
mod tests {
    use super::*;

    /// The limits are part of the protocol (docs/protocol.md): a change must be deliberate, on both
    /// sides at once.
    #[test]
    fn the_limits_are_the_documented_ones() {
        assert_eq!(MAX_WS_MESSAGE, 65_536);
        assert_eq!(MAX_RELAY_BLOB, 32_768);
        assert_eq!(MAX_PEER_FRAME, 65_536);
        assert_eq!(MAX_TEXT, 16_384);
        assert_eq!(MAX_HTTP_BODY, 16_384);
        assert_eq!((MAX_FILE_NAME, MAX_MIME, MAX_ONE_TIME_KEYS), (255, 100, 50));
    }
}
