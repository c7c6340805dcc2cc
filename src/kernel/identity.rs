//! Files as the programs know them: by the device number the kernel keeps in the superblock
//! (`s_dev`) and the inode number. `stat` gives another device number on btrfs (a subvolume's
//! own); the superblock's is in the mount table.

use std::collections::HashMap;
use std::path::Path;

/// A device number as the kernel keeps it in `s_dev` (MAJOR << 20 | MINOR), from stat(2)'s.
pub(super) fn kernel_dev(dev: u64) -> u32 {
    (libc::major(dev) << 20) | libc::minor(dev)
}

/// The device number the programs see for the file at `path` (its superblock's `s_dev`, in the
/// kernel's encoding), `st_dev` being what `stat` gave. On btrfs `stat` gives a subvolume's
/// own number instead; the superblock's is in the mount table, found by the file's mount id
/// (`mounts`: [`mount_devs`]).
pub(super) fn superblock_dev(path: &Path, st_dev: u64, mounts: &HashMap<u64, u32>) -> u32 {
    mount_id(path)
        .and_then(|id| mounts.get(&id).copied())
        .unwrap_or_else(|| kernel_dev(st_dev))
}

/// The id of the mount the file at `path` is on (`statx`, Linux 5.8+).
fn mount_id(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: zeroes are a valid statx; the call fills it, and `c` outlives it.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_MNT_ID, &mut stx) };
    (r == 0 && stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id)
}

/// Mount id -> its superblock's device number (kernel encoding), from the mount table.
pub(super) fn mount_devs() -> HashMap<u64, u32> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let id = fields.next()?.parse::<u64>().ok()?;
            let (major, minor) = fields.nth(1)?.split_once(':')?;
            Some((
                id,
                (major.parse::<u32>().ok()? << 20) | minor.parse::<u32>().ok()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// The mount table gives the device number `stat` gives, where the two agree (procfs).
    #[test]
    fn superblock_device_numbers_come_from_the_mount_table() {
        use std::os::unix::fs::MetadataExt;
        let proc = std::path::Path::new("/proc");
        let id = super::mount_id(proc).expect("statx gives /proc's mount id");
        let dev = super::mount_devs().get(&id).copied();
        let st_dev = std::fs::metadata(proc).unwrap().dev();
        assert_eq!(dev, Some(super::kernel_dev(st_dev)));
    }
}
