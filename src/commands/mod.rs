//! One module per subcommand.

pub mod check_secrets;
pub mod completion;
pub mod diff;
pub mod list;
pub mod render;
