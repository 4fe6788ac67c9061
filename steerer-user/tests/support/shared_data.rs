//! Where the project's shared data (`../shared/data`) is: `$STEERER_SHARED_DATA`,
//! else next to this checkout, else the machine's `/work/shared/data`.
//! Missing data fails the test with a clear message, never skips it.

use std::path::PathBuf;

pub fn shared_data(sub: &str) -> PathBuf {
    let candidates = [
        std::env::var_os("STEERER_SHARED_DATA").map(|p| PathBuf::from(p).join(sub)),
        Some(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data")
                .join(sub),
        ),
        Some(PathBuf::from("/work/shared/data").join(sub)),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_dir())
        .unwrap_or_else(|| {
            panic!("../shared/data/{sub} is missing; set STEERER_SHARED_DATA to the shared data folder")
        })
}
