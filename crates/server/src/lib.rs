//! The AnonChat directory and signaling server: registration, device authentication, presence,
//! one-time keys, rings and the relay of opaque end-to-end encrypted blobs.

pub mod abuse;
pub mod accept;
pub mod app;
pub mod capacity;
pub mod client_ip;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod gate;
pub mod group_pass;
pub mod hold;
pub mod http;
pub mod hub;
pub mod limits;
pub mod logs;
pub mod metrics;
pub mod pace;
pub mod requests;
pub mod ring;
pub mod serve;
pub mod static_code;
pub mod store;
pub mod turn;
pub mod ws;

pub use config::Config;
