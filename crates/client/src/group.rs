//! Groups (DESIGN §10): a group is a call of 2–10 devices, a mesh of pairwise Olm sessions,
//! vouched for by the roster the admin signs (`anonchat_proto::group`).
//!
//! The mesh's rules are a pure machine here (`mesh.rs`); the engine's driver that runs it over
//! sessions and the server is `engine/groups.rs`.

pub mod mesh;
