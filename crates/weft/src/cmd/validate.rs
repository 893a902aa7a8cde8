//! `weft validate` and `weft analyze`.

use clap::{Args, ValueEnum};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use weft_model::{Diagnostic, LoadOutcome, Severity};

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum Output {
    /// One line per finding.
    #[default]
    Text,
    /// A JSON document with every finding.
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files or directories to read (`.yaml`, `.yml`, `.json`, recursively); `-` for stdin.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Output,
    /// Also print Info-level notes (such as skipped kinds).
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub common: ValidateArgs,
}

fn load(files: &[PathBuf]) -> anyhow::Result<LoadOutcome> {
    let (stdin, paths): (Vec<_>, Vec<_>) =
        files.iter().cloned().partition(|p| p.as_os_str() == "-");
    let mut out = weft_model::load_paths(&paths);
    if !stdin.is_empty() {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        let s = weft_model::load_str("<stdin>", &text);
        out.resources.extend(s.resources);
        out.diagnostics.extend(s.diagnostics);
        out.documents += s.documents;
    }
    Ok(out)
}

fn report(
    diags: &[Diagnostic],
    resources: usize,
    documents: usize,
    args: &ValidateArgs,
    what: &str,
) -> ExitCode {
    let shown: Vec<&Diagnostic> = diags
        .iter()
        .filter(|d| args.verbose || d.severity > Severity::Info)
        .collect();
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    match args.output {
        Output::Json => {
            let doc = serde_json::json!({
                "valid": errors == 0,
                "documents": documents,
                "resources": resources,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": shown,
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Output::Text => {
            for d in &shown {
                println!("{d}");
            }
            if errors == 0 {
                eprintln!(
                    "✔ {what}: {resources} resources in {documents} documents, no errors ({warnings} warnings)"
                );
            } else {
                eprintln!(
                    "✘ {what}: {errors} errors, {warnings} warnings in {documents} documents"
                );
            }
        }
    }
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let out = load(&args.files)?;
    Ok(report(
        &out.diagnostics,
        out.resources.len(),
        out.documents,
        &args,
        "validate",
    ))
}

pub fn analyze(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let args = args.common;
    let out = load(&args.files)?;
    let mut diags = out.diagnostics;
    diags.extend(weft_model::analyze::analyze(&out.resources));
    Ok(report(
        &diags,
        out.resources.len(),
        out.documents,
        &args,
        "analyze",
    ))
}
