//! One module per subcommand.

pub mod apply;
pub mod argocd;
pub mod check_isolation;
pub mod check_secrets;
pub mod complete;
pub mod completion;
pub mod deploying;
pub mod diff;
pub mod drift;
pub mod exec;
pub mod init;
pub mod list;
pub mod promote;
pub mod render;
pub mod schema;
pub mod status;
pub mod upgrade;
