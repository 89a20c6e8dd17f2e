//! Scale-out with distcc (plain mode): `serve` runs a distccd container
//! per target from that target's image, and shims send plain compiles to
//! such servers. See `client`, `server` and `fingerprint`.

pub mod client;
pub mod fingerprint;
pub mod forwarding;
pub mod server;

use anyhow::{Context, Result};

use crate::engine::Engine;
use crate::image::dockerfile::Library;
use crate::target::ensure;
use crate::target::plugin::Plugin;

/// A target's server image, ensured.
pub struct ServerImage {
    pub tag: String,
    pub id: String,
    pub fingerprint: String,
}

/// Ensure the target's image, its fingerprint and its server image.
pub fn ensure_server_image(
    engine: &Engine,
    plugin: &Plugin,
    library: &Library,
) -> Result<ServerImage> {
    let want = ensure::wanted_checksum(plugin, library)?;
    let id = ensure::ensure(engine, plugin, library, &want)?;
    let fingerprint = fingerprint::of_image(engine, &id, &plugin.target)?;
    let text = server::dockerfile(plugin, &want, &fingerprint);
    let tag = server::tag(plugin);
    let lib = ensure::job_for(plugin, library)?.library;
    let id = ensure::ensure_generated(
        engine,
        &tag,
        &plugin.target,
        &text,
        &lib,
        "check that the image's apt sources reach a Debian mirror with distcc, then retry",
    )
    .with_context(|| format!("cannot build the distcc server image of {}", plugin.target))?;
    Ok(ServerImage {
        tag,
        id,
        fingerprint,
    })
}
