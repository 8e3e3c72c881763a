/*
 * A SQLite VFS for tests: it passes everything to the default one, except
 * that writes fail with a chosen SQLite code while told to: an I/O error
 * (SQLITE_IOERR_WRITE) or a full disk (SQLITE_FULL) at the place SQLite
 * meets it. With a full disk, appends inside a group still succeed (they
 * stay in SQLite's page cache) and the commit fails, as on a real card.
 * Registered as the default VFS, so a database opened after
 * faulty_vfs_register() goes through it. Process-wide, like SQLite's VFS
 * list; failures are cmocka assertions.
 */
#ifndef EDGETEL_TEST_FAULTY_VFS_H
#define EDGETEL_TEST_FAULTY_VFS_H

/** Register as the default VFS, writes passing. */
void faulty_vfs_register(void);

/**
 * Make the default VFS the default again (databases opened through this
 * one must be closed first). A no-op when not registered.
 */
void faulty_vfs_unregister(void);

/** Fail every write with sqlite_code from now on; 0 lets writes pass again. */
void faulty_vfs_fail_writes(int sqlite_code);

#endif
