//! A command's report as it is built: text for people, a JSON document for programs. The
//! text shown so far can be printed early (before a prompt, so the person approving sees what
//! they approve); the rest is printed once, at the end.

use serde_json::{Value, json};

use crate::output::markdown::{Markdown, Section, table};
use crate::terminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    /// A pull-request comment: the text's parts as collapsible sections, within a size limit.
    Markdown {
        max_size: usize,
    },
}

/// The first fields of a deploying command's document: the command, and the stage it deploys.
#[derive(serde::Serialize)]
pub struct Head<'a> {
    pub command: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'a str>,
}

pub struct Document {
    text: String,
    json: Value,
    /// JSON written by `set` goes here while a section (one stage of `apply`) is open.
    section: Option<Value>,
    format: Format,
    on_stderr: bool,
    /// The text by part (`part`), for Markdown: (title, text, the command that shows it).
    parts: Vec<(String, String, String)>,
    /// Rows of the Markdown summary table.
    summary: Vec<(String, String)>,
    title: String,
}

impl Document {
    /// `head`: the document's first fields (`command`, ...), a struct that serializes as a map.
    pub fn new(format: Format, head: impl serde::Serialize) -> Document {
        Document {
            text: String::new(),
            json: to_value(head),
            section: None,
            format,
            on_stderr: false,
            parts: Vec::new(),
            summary: Vec::new(),
            title: String::new(),
        }
    }

    /// The Markdown report's title, and the command that shows a part in full.
    pub fn titled(self, title: impl Into<String>) -> Document {
        Document { title: title.into(), ..self }
    }

    /// Start a part of the report (a collapsible section in Markdown): what follows belongs to
    /// it; `command` shows it in full.
    pub fn part(&mut self, title: &str, command: &str) {
        self.parts.push((title.to_string(), String::new(), command.to_string()));
    }

    /// A row of the Markdown summary table.
    pub fn summarize(&mut self, key: &str, value: impl Into<String>) {
        self.summary.push((key.to_string(), value.into()));
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
        if let Some((_, part, _)) = self.parts.last_mut() {
            part.push_str(text);
        }
    }

    /// The report as Markdown: the summary table, then each part that has text.
    pub fn markdown(&self, result: &str, max_size: usize) -> String {
        let mut rows: Vec<Vec<String>> = self.summary.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
        rows.push(vec!["Result".into(), result.into()]);
        let sections = self
            .parts
            .iter()
            .filter(|(_, text, _)| !text.trim().is_empty())
            .map(|(title, text, command)| Section {
                title: title.clone(),
                body: text.clone(),
                language: if crate::output::markdown::is_diff(text) { "diff" } else { "text" },
                command: command.clone(),
                essential: false,
            })
            .collect();
        Markdown { title: self.title.clone(), summary: table(&["", ""], &rows), sections }.render(max_size)
    }

    /// Set a field of the open section, or of the document.
    pub fn set(&mut self, key: &str, value: impl serde::Serialize) {
        self.section.as_mut().unwrap_or(&mut self.json)[key] = to_value(value);
    }

    /// Open a section: `set` writes into `section` (its first fields: `head`) until
    /// `end_section` returns it.
    pub fn begin_section(&mut self, head: impl serde::Serialize) {
        self.section = Some(to_value(head));
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
                let mut body = self.json.clone();
                body["result"] = json!(result);
                // A map of JSON values always serializes.
                terminal::stdout(&crate::output::json_text(&body).unwrap_or_default());
            }
            Format::Markdown { max_size } => terminal::stdout(&self.markdown(result, max_size)),
        }
    }

    fn print(&self, text: &str) {
        if self.on_stderr { terminal::stderr(text) } else { terminal::stdout(text) }
    }
}

/// A report type as JSON: helm-envs' report types have string keys only, so they always convert.
fn to_value(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}
