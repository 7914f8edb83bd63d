//! Integration tests: the real helm-envs binary, real helm, real kube-apiservers (started by
//! `make test`). One binary, modules by command.

mod harness;

mod architecture;
mod argocd_stages;
mod bad_input;
mod charts;
mod check_secrets;
mod ci;
mod cli;
mod diff;
mod documented;
mod drift;
mod encrypted;
mod exec;
mod hardening;
mod health;
mod init;
mod isolation;
mod judging;
mod list;
mod markdown;
mod needs;
mod nodes;
mod plugin;
mod promote;
mod readme;
mod redaction;
mod render;
mod scale;
mod schema;
mod time_gates;
mod values;
mod waves;
