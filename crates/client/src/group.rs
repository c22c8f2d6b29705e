//! Groups (DESIGN §10, issue 16): a group is a call of 2–10 devices, a mesh of pairwise Olm
//! sessions, vouched for by the roster the admin signs (`anonchat_proto::group`).
//!
//! What is here so far is the mesh's rules as a pure machine (`mesh.rs`); the engine's driver,
//! the wire messages and the front-ends are still to come.

pub mod mesh;
