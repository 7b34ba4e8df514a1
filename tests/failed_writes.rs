//! A write that fails (a full disk, a bad input found late) leaves nothing
//! behind: no partial file, no empty output folder, no parent folder it made.

mod common;

use std::path::Path;
use std::process::Command;

use common::{regimes, succeeds, temp_dir};
use diffusion_regimes::io::{write_atomic, write_folder};
use diffusion_regimes::Error;

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_folder_whose_filling_fails_is_not_left_behind() {
    let root = temp_dir("write-folder");
    let out = root.join("new/parents/out");
    let e = write_folder(&out, |dir| {
        write_atomic(&dir.join("first.npy"), b"written")?;
        Err(Error::io(
            &dir.join("second.npy"),
            std::io::Error::other("disk full"),
        ))
    })
    .err()
    .unwrap();
    // The error names the file asked for, not the staging copy.
    assert_eq!(
        e.to_string(),
        format!("{}: disk full", out.join("second.npy").display())
    );
    assert!(entries(&root).is_empty(), "{:?}", entries(&root));

    write_folder(&out, |dir| write_atomic(&dir.join("first.npy"), b"ok")).unwrap();
    assert_eq!(entries(&out), ["first.npy"]);
    assert!(
        entries(out.parent().unwrap()) == ["out"],
        "no staging folder left"
    );
    // A folder that holds files already is filled in place.
    write_folder(&out, |dir| write_atomic(&dir.join("second.npy"), b"ok")).unwrap();
    assert_eq!(entries(&out), ["first.npy", "second.npy"]);
}

/// `regimes data gaussian` on a 2 MB tmpfs: the data does not fit, the
/// command fails naming the file, and the disk holds nothing. Needs a tmpfs
/// mount (root); skipped with a message where mounting is not allowed.
#[test]
fn a_data_set_that_does_not_fit_on_the_disk_leaves_no_folder() {
    let mount = temp_dir("tmpfs-2m");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mount)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    let out = mount.join("sets/gaussian");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    // 20,000 x 64 f32 = 5 MB.
    let full = regimes(&[
        "data",
        "gaussian",
        "--ambient",
        "64",
        "--n",
        "20000",
        "--out",
        &s(&out),
    ]);
    let left = entries(&mount);
    let small = regimes(&[
        "data",
        "gaussian",
        "--ambient",
        "4",
        "--n",
        "20",
        "--out",
        &s(&out),
    ]);
    let small_files = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
    let _ = Command::new("umount").arg(&mount).status();
    assert_eq!(full.status.code(), Some(2));
    let said = String::from_utf8_lossy(&full.stderr);
    assert!(
        said.contains("No space left") && said.contains(&s(&out.join("data.npy"))),
        "{said}"
    );
    assert!(left.is_empty(), "left behind: {left:?}");
    succeeds(&small);
    assert_eq!(
        small_files, 4,
        "data, labels and the distribution's two files"
    );
}
