//! Disk passthrough devices whose character majors the kernel hands out at run time (NVMe
//! controllers and namespaces, SCSI bsg, RAID controllers' management devices, devices handed
//! to user space whole: VFIO groups and devices, UIO, ublk servers' ends): read from
//! `/proc/devices` so that the programs refuse opening them (bpf/files.h, `raw_device`).
//! Drivers that register later are caught in the kernel (`ua_chrdev_region`,
//! `ua_register_chrdev`). Misc devices that hand a disk over and get their minor at run time
//! (`/dev/nvme-fabrics`) are read from `/proc/misc` the same way (`ua_misc_register`).

/// Names of the character device regions of passthrough drivers, as `/proc/devices` lists
/// them; bpf/files.h's `passthrough_name` holds the same names.
pub const PASSTHROUGH_REGIONS: [&str; 16] = [
    "nvme",
    "nvme-generic",
    "bsg",
    "aac",
    "megaraid_sas_ioctl",
    "megadev_legacy",
    "twa",
    "twl",
    "twe",
    // A device bound to VFIO (groups; "vfio-dev" is the per-device cdev of 6.6 and later) or
    // UIO is driven from user space: its registers and DMA reach all memory and any disk.
    "vfio",
    "vfio-dev",
    "uio",
    // The server end of a ublk block device, and VDUSE's devices (a virtio disk served from
    // user space): whoever holds it answers every read of that disk, and root outside the
    // unit may mount it.
    "ublk-char",
    "vduse",
    // The BMC (`ipmitool chassis power cycle`, or new out-of-band users) and hardware
    // watchdogs (a second's timeout, never written: the machine resets).
    "ipmidev",
    "watchdog",
];

/// Names of the misc devices with a run-time minor that hand a disk over, as `/proc/misc`
/// lists them; bpf/files.h's `passthrough_name` holds them too. A connect string written
/// to nvme-fabrics attaches an NVMe disk served from an address the writer names.
/// megaraid_mm's management device passes mailbox commands to the controller's disks.
pub const PASSTHROUGH_MISC: [&str; 2] = ["nvme-fabrics", "megadev0"];

/// The minors of the listed misc devices in `proc_misc` (the text of `/proc/misc`, a minor and
/// a name per line).
pub fn passthrough_misc_minors(proc_misc: &str) -> Vec<u32> {
    listed_numbers(proc_misc.lines(), &PASSTHROUGH_MISC)
}

/// The numbers of the "NUMBER NAME" lines whose name is in `names`, each once.
fn listed_numbers<'a>(lines: impl Iterator<Item = &'a str>, names: &[&str]) -> Vec<u32> {
    let mut numbers = Vec::new();
    for line in lines {
        let mut fields = line.split_whitespace();
        let (Some(number), Some(name), None) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if let Ok(number) = number.parse::<u32>() {
            if names.contains(&name) && !numbers.contains(&number) {
                numbers.push(number);
            }
        }
    }
    numbers
}

/// The majors of the passthrough regions in `proc_devices` (the text of `/proc/devices`).
pub fn passthrough_majors(proc_devices: &str) -> Vec<u32> {
    let mut chars = false;
    let lines = proc_devices.lines().filter(|line| {
        let line = line.trim();
        if line.ends_with(':') {
            chars = line == "Character devices:";
            return false;
        }
        chars
    });
    listed_numbers(lines, &PASSTHROUGH_REGIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICES: &str = "Character devices:
  1 mem
  4 /dev/vc/0
 21 sg
 90 mtd
239 bsg
236 ublk-char
237 uio
238 vfio
241 nvme-generic
242 nvme
243 megaraid_sas_ioctl
244 twa_extra
245 vfio-dev
254 gpiochip

Block devices:
  8 sd
259 blkext
242 nvme
";

    #[test]
    fn finds_the_passthrough_character_majors_only() {
        let mut m = passthrough_majors(DEVICES);
        m.sort();
        assert_eq!(m, vec![236, 237, 238, 239, 241, 242, 243, 245]);
    }

    #[test]
    fn finds_nvme_fabrics_minor_in_proc_misc() {
        let text = "242 nvme-fabrics\n236 device-mapper\n 60 fuse2\n123 vhost-net\n";
        assert_eq!(passthrough_misc_minors(text), vec![242]);
        assert!(passthrough_misc_minors("236 device-mapper\n").is_empty());
    }

    #[test]
    fn misc_minors_are_kept_whole() {
        assert_eq!(passthrough_misc_minors("300 nvme-fabrics\n"), vec![300]);
        assert_eq!(
            passthrough_misc_minors("255 nvme-fabrics\n 61 megadev0\n"),
            vec![255, 61]
        );
        // A line that is not "minor name" is skipped.
        assert!(passthrough_misc_minors("nvme-fabrics\nx nvme-fabrics\n").is_empty());
    }

    #[test]
    fn block_devices_and_other_names_are_not_taken() {
        let text = "Character devices:\n 10 misc\n\nBlock devices:\n 250 bsg\n";
        assert!(passthrough_majors(text).is_empty());
        assert!(passthrough_majors("").is_empty());
    }
}
