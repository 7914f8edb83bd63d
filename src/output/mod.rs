//! Formatting results for people and programs.

pub mod document;
pub mod drift;
pub mod gates;
pub mod isolation;
pub mod markdown;
pub mod promotion;
pub mod report;
pub mod scaffold;
pub mod secrets;
pub mod status;
