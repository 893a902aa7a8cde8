//! `weft apply`, `weft delete`, `weft get`: kubectl-like access to the control plane's
//! config store over its REST API (`$WEFT_SERVER`, default `http://127.0.0.1:15014`).

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Full};
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the control plane's API is.
pub(super) fn server() -> String {
    std::env::var("WEFT_SERVER")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:15014".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Files or directories (`.yaml`, `.yml`, `.json`, recursively); `-` for stdin.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GetOutput {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Kind: `virtualservices`, `vs`, `destinationrule`, `gw`, `se`, ...
    pub kind: String,
    /// Only the resource of this name.
    pub name: Option<String>,
    /// Only this namespace (default: all).
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
    /// Print the resources instead of a table.
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<GetOutput>,
}

/// Files to send, each with its name for messages.
fn read_inputs(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
            out.push(("<stdin>".to_owned(), text));
            continue;
        }
        for f in weft_model::collect_files(p).with_context(|| format!("reading {}", p.display()))? {
            let text =
                std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            out.push((f.display().to_string(), text));
        }
    }
    Ok(out)
}

/// One HTTP request to the API; returns status and JSON body.
async fn call(method: &str, path: &str, body: String) -> anyhow::Result<(u16, serde_json::Value)> {
    let url = format!("{}{path}", server());
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = hyper::Request::builder()
        .method(method)
        .uri(&url)
        .header("content-type", "application/yaml")
        .body(Full::new(Bytes::from(body)))?;
    let resp = client.request(req).await.with_context(|| {
        format!(
            "cannot reach the control plane at {} (is `weft control` running? set $WEFT_SERVER)",
            server()
        )
    })?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    });
    Ok((status, json))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn print_errors(body: &serde_json::Value) -> usize {
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    for e in &errors {
        eprintln!("{}", e.as_str().unwrap_or_default());
    }
    errors.len()
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `weft apply -f`: every file is validated by the server; an invalid file changes nothing.
pub fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let inputs = read_inputs(&args.files)?;
    let rt = runtime()?;
    let mut failed = false;
    for (file, text) in inputs {
        let (status, body) = rt.block_on(call(
            "POST",
            &format!("/api/v1/apply?file={}", percent_encode(&file)),
            text,
        ))?;
        match status {
            200 => {
                for r in body["results"].as_array().into_iter().flatten() {
                    println!(
                        "{} {}",
                        r["resource"].as_str().unwrap_or("?"),
                        r["action"].as_str().unwrap_or("?")
                    );
                }
            }
            422 => {
                let n = print_errors(&body);
                eprintln!("✘ apply: {file} refused ({n} errors); nothing was changed");
                failed = true;
            }
            other => bail!("apply {file}: server answered {other}: {body}"),
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `weft delete -f`.
pub fn delete(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let inputs = read_inputs(&args.files)?;
    let rt = runtime()?;
    let mut failed = false;
    for (file, text) in inputs {
        let (status, body) = rt.block_on(call(
            "POST",
            &format!("/api/v1/delete?file={}", percent_encode(&file)),
            text,
        ))?;
        match status {
            200 => {
                for d in body["deleted"].as_array().into_iter().flatten() {
                    println!("{} deleted", d.as_str().unwrap_or("?"));
                }
                for d in body["notFound"].as_array().into_iter().flatten() {
                    eprintln!("{} not found", d.as_str().unwrap_or("?"));
                    failed = true;
                }
            }
            422 => {
                print_errors(&body);
                failed = true;
            }
            other => bail!("delete {file}: server answered {other}: {body}"),
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `weft get KIND [NAME]`.
pub fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let mut query = Vec::new();
    if let Some(ns) = &args.namespace {
        query.push(format!("namespace={}", percent_encode(ns)));
    }
    if let Some(n) = &args.name {
        query.push(format!("name={}", percent_encode(n)));
    }
    let path = format!(
        "/api/v1/resources/{}?{}",
        percent_encode(&args.kind),
        query.join("&")
    );
    let (status, body) = runtime()?.block_on(call("GET", &path, String::new()))?;
    if status != 200 {
        print_errors(&body);
        return Ok(ExitCode::from(1));
    }
    let items = body["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        eprintln!("No resources found.");
        return Ok(if args.name.is_some() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    match args.output {
        Some(GetOutput::Json) => {
            let doc = if args.name.is_some() && items.len() == 1 {
                items[0].clone()
            } else {
                serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items })
            };
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Some(GetOutput::Yaml) => {
            let docs: Vec<String> = items
                .iter()
                .map(serde_saphyr::to_string)
                .collect::<Result<_, _>>()?;
            print!("{}", docs.join("---\n"));
        }
        None => {
            println!("{:<20} {:<40} KIND", "NAMESPACE", "NAME");
            for i in &items {
                println!(
                    "{:<20} {:<40} {}",
                    i["metadata"]["namespace"].as_str().unwrap_or("default"),
                    i["metadata"]["name"].as_str().unwrap_or("?"),
                    i["kind"].as_str().unwrap_or("?"),
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
