//! Size limits. Both sides enforce them; anything larger is refused before it is parsed.

/// Largest client↔server WebSocket message (JSON text).
pub const MAX_WS_MESSAGE: usize = 64 * 1024;
/// Largest relayed blob (decoded bytes). SDP offers with a certificate fit with room to spare.
pub const MAX_RELAY_BLOB: usize = 32 * 1024;
/// Largest frame on the peer data channel (an Olm message, encoded).
pub const MAX_PEER_FRAME: usize = 64 * 1024;
/// Longest text message body, in bytes of UTF-8.
pub const MAX_TEXT: usize = 16 * 1024;
/// Most one-time keys a device may have on the server at once.
pub const MAX_ONE_TIME_KEYS: usize = 50;
/// Largest HTTP request body (registration).
pub const MAX_HTTP_BODY: usize = 16 * 1024;
