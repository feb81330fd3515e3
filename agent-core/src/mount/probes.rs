//! The answers a read-only filesystem without extended attributes gives to the calls programs
//! make to probe it (ARCHITECTURE §13.4, "read-only answers"). `ls`, `stat`, `getfattr`, `cp -a`,
//! `rsync -a`, `git` and `sqlite3` ask for xattrs (SELinux labels, ACLs, capabilities), try
//! `ioctl`s (`FS_IOC_GETFLAGS`, `FICLONE`, `FIONREAD`), seek for data and holes, and sync; fuser
//! answers every call it is not given with `ENOSYS` and a WARN line. These are the quiet,
//! correct answers; the adapter only forwards them.

use fuser::Errno;

/// `getxattr`: the tree has no extended attributes.
pub const GETXATTR: Errno = Errno::NO_XATTR;

/// `setxattr`, `removexattr`, `fallocate`, `copy_file_range` into the tree: it is read-only.
pub const WRITE: Errno = Errno::EROFS;

/// `ioctl`: no device controls (what `isatty` and `FS_IOC_*` probes expect).
pub const IOCTL: Errno = Errno::ENOTTY;

/// `readlink`: the tree holds no symbolic links.
pub const READLINK: Errno = Errno::EINVAL;

/// `bmap`: not a block-device filesystem.
pub const BMAP: Errno = Errno::EINVAL;

/// What `listxattr` answers: the size of an empty list when asked for the size, else the
/// (empty) list.
#[derive(Debug, PartialEq, Eq)]
pub enum XattrList {
    Size(u32),
    Data(&'static [u8]),
}

pub fn listxattr(size: u32) -> XattrList {
    if size == 0 {
        XattrList::Size(0)
    } else {
        XattrList::Data(&[])
    }
}

/// `access`: any existing entry may be read and searched, none written.
pub fn access(mask: i32) -> Result<(), Errno> {
    if mask & libc::W_OK != 0 {
        Err(Errno::EROFS)
    } else {
        Ok(())
    }
}

/// `lseek` with `SEEK_DATA` / `SEEK_HOLE` (the kernel answers the other kinds itself) in a file
/// of `size` bytes with no holes: data everywhere before the end, the one hole at the end.
pub fn lseek(size: u64, offset: i64, whence: i32) -> Result<i64, Errno> {
    let Ok(at) = u64::try_from(offset) else { return Err(Errno::EINVAL) };
    match whence {
        libc::SEEK_DATA if at < size => Ok(offset),
        libc::SEEK_HOLE if at < size => i64::try_from(size).map_err(|_| Errno::EOVERFLOW),
        libc::SEEK_DATA | libc::SEEK_HOLE => Err(Errno::ENXIO),
        libc::SEEK_SET => Ok(offset),
        _ => Err(Errno::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listxattr_answers_an_empty_list_both_ways() {
        assert_eq!(listxattr(0), XattrList::Size(0));
        assert_eq!(listxattr(4096), XattrList::Data(&[]));
    }

    #[test]
    fn access_refuses_only_writing() {
        assert_eq!(access(libc::R_OK | libc::X_OK), Ok(()));
        assert_eq!(access(libc::F_OK), Ok(()));
        assert_eq!(access(libc::R_OK | libc::W_OK), Err(Errno::EROFS));
    }

    #[test]
    fn seek_data_and_hole_see_one_hole_at_the_end() {
        assert_eq!(lseek(100, 10, libc::SEEK_DATA), Ok(10));
        assert_eq!(lseek(100, 10, libc::SEEK_HOLE), Ok(100));
        assert_eq!(lseek(100, 100, libc::SEEK_DATA), Err(Errno::ENXIO));
        assert_eq!(lseek(0, 0, libc::SEEK_HOLE), Err(Errno::ENXIO));
        assert_eq!(lseek(100, -1, libc::SEEK_DATA), Err(Errno::EINVAL));
    }

    #[test]
    fn the_errnos_are_the_read_only_ones() {
        assert_eq!(GETXATTR.code(), libc::ENODATA);
        assert_eq!(IOCTL.code(), libc::ENOTTY);
        assert_eq!(WRITE.code(), libc::EROFS);
    }
}
