//! The kubelet-facing gRPC surface of `tessera plugin`: sockets, registration and the DRA
//! service in both wire versions. It translates wire messages to and from `prepare`'s types
//! and makes no decisions.

pub mod proto;
