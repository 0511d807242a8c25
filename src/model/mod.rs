//! The ProteinMPNN network.
