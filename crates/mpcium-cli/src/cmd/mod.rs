//! One module per `mpcium-cli` command.

pub mod version;
