//! The AnonChat wire protocol: every type that crosses a wire, the canonical bytes that get signed,
//! username rules, device certificates, proof-of-work stamps and safety numbers.
//!
//! Pure logic only: no I/O, no async runtime. `docs/protocol.md` is the prose form of this crate.

pub mod attach;
pub mod bytes;
pub mod cert;
pub mod enroll;
pub mod error;
pub mod frames;
pub mod fuzz;
pub mod fvc;
pub mod group;
pub mod limits;
pub mod pow;
pub mod rotation;
pub mod safety;
pub mod signing;
pub mod username;
pub mod wire;

pub use bytes::{Key32, Sig64};
pub use cert::{Caps, DeviceCert, DeviceId};
pub use error::ProtoError;
pub use username::Username;

/// Protocol version carried in every message and frame.
pub const VERSION: u8 = 1;
