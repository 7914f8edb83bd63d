//! One module per subcommand.

pub mod completion;
pub mod diff;
pub mod list;
pub mod render;
