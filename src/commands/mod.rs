//! One module per subcommand.

pub mod completion;
pub mod list;
pub mod render;
