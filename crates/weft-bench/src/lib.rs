//! Benchmarks only; see `benches/hot_path.rs` (`cargo bench -p weft-bench`).
