//! sealmem selftests in Rust, through the safe `sealmem` crate. Prints TAP (the same shape
//! as kselftest_harness: `ok N name`, `not ok N name`, `ok N name # SKIP why`) and exits 1 if
//! any test failed.
//!
//! `sealmem-selftests [FILTER]` runs the tests whose name contains FILTER;
//! `sealmem-selftests --handshake` prints the module's handshake answer (used by the demo).

mod harness;
mod tests_crate;
mod tests_dev;
mod tests_file;
mod tests_fill;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--handshake") {
        return match sealmem::SealFile::create().map_err(std::io::Error::from).and_then(|f| f.handshake(0)) {
            Ok(api) => {
                println!(
                    "SEALMEM_IOC_API: version {} features {:#x} ioctls {:#x}",
                    api.version, api.features, api.ioctls
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("handshake failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let filter = args.first().cloned().unwrap_or_default();
    let mut tests = Vec::new();
    tests.extend(tests_dev::TESTS.iter().copied());
    tests.extend(tests_file::TESTS.iter().copied());
    tests.extend(tests_fill::TESTS.iter().copied());
    tests.extend(tests_crate::TESTS.iter().copied());
    harness::run(&tests, &filter)
}
