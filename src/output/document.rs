//! A command's report as it is built: text for people, a JSON document for programs. The
//! text shown so far can be printed early (before a prompt, so the person approving sees what
//! they approve); the rest is printed once, at the end.

use serde_json::{Value, json};

use crate::terminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub struct Document {
    text: String,
    json: Value,
    /// JSON written by `set` goes here while a section (one stage of `apply`) is open.
    section: Option<Value>,
    format: Format,
    on_stderr: bool,
}

impl Document {
    /// `json`: the document's first fields (`command`, ...).
    pub fn new(format: Format, json: Value) -> Document {
        Document { text: String::new(), json, section: None, format, on_stderr: false }
    }

    /// A report on stderr, as text: `exec` keeps stdout for the command it runs.
    pub fn on_stderr() -> Document {
        Document { on_stderr: true, ..Document::new(Format::Text, Value::Null) }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Set a field of the open section, or of the document.
    pub fn set(&mut self, key: &str, value: Value) {
        self.section.as_mut().unwrap_or(&mut self.json)[key] = value;
    }

    /// Open a section: `set` writes into `section` until `end_section` returns it.
    pub fn begin_section(&mut self, section: Value) {
        self.section = Some(section);
    }

    pub fn end_section(&mut self) -> Value {
        self.section.take().unwrap_or_default()
    }

    /// Print the text so far (text format only) and start over.
    pub fn show_so_far(&mut self) {
        if self.format == Format::Text {
            let text = std::mem::take(&mut self.text);
            self.print(&text);
        }
    }

    /// Print the rest: the text, or the JSON document with its `result` and schema version.
    pub fn emit(&mut self, result: &str) {
        match self.format {
            Format::Text => {
                let text = std::mem::take(&mut self.text);
                self.print(&text);
            }
            Format::Json => {
                let mut json = self.json.clone();
                json["schemaVersion"] = json!(1);
                json["result"] = json!(result);
                terminal::stdout(&format!("{}\n", serde_json::to_string_pretty(&json).unwrap_or_default()));
            }
        }
    }

    fn print(&self, text: &str) {
        if self.on_stderr { terminal::stderr(text) } else { terminal::stdout(text) }
    }
}
