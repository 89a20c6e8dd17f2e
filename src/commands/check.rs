//! `check TAG [DOCKERFILE]`: is the image up to date (checksum) or recent
//! enough (age)?

use anyhow::{Result, bail};

use crate::commands::Command;
use crate::commands::argparse::{Arity, Matches, Opt, Pos, Spec};
use crate::context::Ctx;
use crate::image::dockerfile::{self, Library};

pub const COMMAND: Command = Command::docker_py(
    &SPEC,
    "is an image up to date (checksum) or recent (age)?",
    run,
);

pub const SPEC: Spec = Spec {
    name: "check",
    about: "Check if we need to re-build an image out of a dockerfile. \
            Arguments: <tag> <dockerfile>, or a target name",
    opts: &[
        Opt {
            names: &["--checktype"],
            dest: "checktype",
            arity: Arity::One,
            metavar: "{checksum,age}",
            help: "check type (default: checksum)",
            required: false,
        },
        Opt {
            names: &["--olderthan"],
            dest: "olderthan",
            arity: Arity::One,
            metavar: "MIN",
            help: "number of minutes (default: 60)",
            required: false,
        },
    ],
    positionals: &[
        Pos {
            name: "tag",
            required: true,
            help: "Image Tag, or a target name",
        },
        Pos {
            name: "dockerfile",
            required: false,
            help: "Dockerfile name",
        },
    ],
    epilog: "examples:\n  qemu-cross-cc check qemu/debian-x dockerfiles/debian-x.docker\n  \
             qemu-cross-cc check aarch64-linux-gnu\n  \
             qemu-cross-cc check --checktype age --olderthan 120 qemu/debian-x",
};

pub fn run(ctx: &Ctx, m: &Matches) -> Result<i32> {
    let checktype = m.value("checktype").unwrap_or("checksum");
    if checktype != "checksum" && checktype != "age" {
        return Err(crate::error::UsageError {
            command: "check".into(),
            message: format!(
                "argument --checktype: invalid choice: '{checktype}' (choose from 'checksum', 'age')"
            ),
        }
        .into());
    }
    let olderthan: i64 = match m.value("olderthan") {
        None => 60,
        Some(v) => v.parse().map_err(|_| crate::error::UsageError {
            command: "check".into(),
            message: format!("argument --olderthan: invalid int value: '{v}'"),
        })?,
    };
    let quiet = m.flag("quiet");
    let name = m.positional(0).unwrap_or_default();
    // A target name stands for its image and dockerfile.
    let mut tag = name.to_string();
    let mut source: Option<(String, Library)> = None;
    let dockerfile_path = m.positional(1).map(std::path::Path::new);
    if dockerfile_path.is_none() {
        if let Some(plugin) = crate::target::plugin::Registry::load()?.find(name) {
            // The image its dockerfile describes (the tools may run in
            // one derived from it with packages).
            tag = plugin.base_image().to_string();
            let df = plugin.dockerfile(&ctx.library)?;
            let library = ctx.library.with_fallback(df.dir.as_deref());
            source = Some((df.text, library));
        }
    }

    let engine = ctx.engine()?;
    let Some(info) = engine.inspect_image(&tag)? else {
        println!("Image does not exist");
        return Ok(1);
    };
    if let Some(path) = dockerfile_path {
        let library = ctx.library.with_fallback(path.parent());
        source = Some((dockerfile::read(path)?, library));
    }
    if checktype == "checksum" {
        let Some((text, library)) = source else {
            println!("Need a dockerfile for tag:{tag}");
            return Ok(1);
        };
        let want = dockerfile::checksum(&text, &library)?;
        let have = info["Config"]["Labels"][crate::engine::labels::DOCKERFILE_CHECKSUM]
            .as_str()
            .unwrap_or("");
        if have == want {
            if !quiet {
                println!("Image is up to date");
            }
            Ok(0)
        } else {
            println!("Image needs updating");
            Ok(1)
        }
    } else {
        let created = info["Created"].as_str().unwrap_or("");
        let timestr = created.split('.').next().unwrap_or("");
        let Some(created_at) = parse_utc(created) else {
            bail!("cannot read the image's creation time '{created}'");
        };
        let now = crate::host::unix_now() as i64;
        if created_at < now - olderthan * 60 {
            println!("Image created @ {timestr} more than {olderthan} minutes old");
            Ok(1)
        } else {
            if !quiet {
                println!("Image less than {olderthan} minutes old");
            }
            Ok(0)
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Seconds since the epoch of an engine timestamp such as
/// `2026-11-25T11:33:41.271483288Z` or `...+01:00` (docker.py compared it
/// with local time; both engines report UTC or an explicit offset).
pub fn parse_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    // A numeric offset after the seconds (and fraction).
    let rest = &s[19..];
    let rest = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if let Some(off) = rest.strip_prefix('+').or_else(|| rest.strip_prefix('-')) {
        let sign = if rest.starts_with('+') { 1 } else { -1 };
        let oh: i64 = off.get(0..2)?.parse().ok()?;
        let om: i64 = off.get(3..5).and_then(|x| x.parse().ok()).unwrap_or(0);
        t -= sign * (oh * 3600 + om * 60);
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_utc("2026-11-25T11:33:41.271483288Z"),
            Some(1795606421)
        );
        assert_eq!(parse_utc("2026-11-25T12:33:41+01:00"), Some(1795606421));
        assert_eq!(parse_utc("garbage"), None);
    }
}
