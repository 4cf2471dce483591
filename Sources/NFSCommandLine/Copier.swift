import Dispatch
import Foundation
import LibNFS
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `nfs-cp` was asked to do, beyond its operands.
public struct CopyOptions: Sendable {
    public var recursive = false
    public var preserve = false
    public var noClobber = false
    public var verify = false
    public var inplace = false
    /// Skip a file whose destination has the same size and modification time (to the second, as rsync's quick check).
    public var update = false
    /// Skip a file whose destination has the same size and SHA-256 (both sides read).
    public var checksum = false
    /// Which paths below each source to leave out (`--exclude`, `--include`).
    public var filter = PathFilter()
    /// Plan against both sides and report, changing nothing.
    public var dryRun = false
    /// After a directory is copied without failures, remove destination entries the source does not have.
    public var delete = false
    /// Leave whole blocks of zero bytes unwritten, so holes stay holes.
    public var sparse = false
    /// Files in flight at once. 64: a tree of 200 files of 4 KiB through a 2 ms round trip
    /// took 0.30 s up and 0.17 s down, against 0.52 and 0.32 at 16 (32: 0.35 and 0.22);
    /// on plain loopback 64 and 16 measured alike. Large files are held to a few of them.
    public var jobs = 64
    /// The mounts' settings.
    /// - Writes go out 8 MiB ahead of the answers (write-behind): a file is judged by its
    ///   close anyway, and on a 10 ms round trip waiting for each chunk's WRITEs made a
    ///   64 MiB upload take 1.9 times its time without delay.
    /// - A large file is read up to 32 MiB ahead (a URL's `readahead` wins), which the library
    ///   cuts to what the mount's round trip needs (4 MiB on loopback, about 21 MiB at 10 ms):
    ///   at 10 ms a 64 MiB download took 0.154 s against 0.160 s with 16 MiB (and 0.32 s
    ///   with the library's 8 MiB, before streams started at full depth).
    /// - No UMNT at the end, as libnfs-utils' `nfs-cp`: two round trips the server keeps
    ///   nothing for but `showmount`'s list.
    /// - Exports nested below the one named are not crossed unless the URL says
    ///   `auto-traverse-mounts=1`, as a Linux kernel's NFSv3 mount: finding them costs every
    ///   mount a round trip (MOUNT's EXPORT), and with them crossed the copy keeps to path calls.
    /// - The mount returns at the MNT reply (`returnsAtRootHandle`): the first LOOKUP, CREATE
    ///   and listing go out beside the FSINFO that brings the transfer sizes, a round trip
    ///   sooner (a 64 MiB download at 10 ms: 0.157 s against 0.165 s, medians of 8 rounds).
    public var nfs = NFSOptions(readahead: 32 << 20, writeBehind: 8 << 20, unmountsOnClose: false,
                                traversesNestedExports: false, returnsAtRootHandle: true)
    public init() {}
}

/// One file or tree that could not be copied.
public struct CopyFailure: Sendable, Codable, Hashable {
    public var path: String
    public var reason: String
}

/// One step of a copy, as `--dry-run` reports it.
public struct PlannedAction: Sendable, Codable, Hashable {
    /// `mkdir`, `copy` (nothing there yet), `replace`, `skip` or `delete`.
    public var action: String
    /// The destination path the step is about.
    public var path: String
    /// Why a file is skipped.
    public var reason: String?

    /// The line `--dry-run` prints.
    public var line: String { reason.map { "\(action) \(path) (\($0))" } ?? "\(action) \(path)" }
}

/// The outcome of a copy, as printed by `--json`.
public struct CopySummary: Sendable, Codable {
    public var files: Int
    public var directories: Int
    public var symlinks: Int
    public var skipped: Int
    /// The skipped files counted by reason (`exists`, `same size and time`, `same checksum`, `same link`).
    public var skippedReasons: [String: Int]
    /// Destination entries removed by `--delete`: each file, link and directory (with what was in it) counts one.
    public var deleted: Int
    /// With `--dry-run`: every step the copy would take, in order; nothing was changed.
    public var plan: [PlannedAction]?
    public var bytes: UInt64
    public var seconds: Double
    public var bytesPerSecond: Double
    public var failures: [CopyFailure]
    public var interrupted: Bool
}

/// Wrong operands, reported as a usage error (exit status 2).
public struct CopyUsageError: Error, CustomStringConvertible {
    public let description: String
}

/// Plans and runs a copy of local paths and `nfs://` URLs, file by file through
/// a temporary name that is renamed over the destination only when complete.
public final class Copier: Sendable {
    private enum Kind: Sendable { case directory, file, symlink }

    private struct Item: Sendable {
        let kind: Kind
        let source: Operand
        let sourcePath: FilePath
        let destination: Operand
        let destinationPath: FilePath
        let info: FileInfo
        /// The path below the source operand that filters match (`a/b.txt`); a named file's own name.
        let relative: [UInt8]
        /// What lstat found at `destinationPath` while planning (nil inside: nothing), when
        /// planning looked: a file or directory copied to a name of its own needs no second lookup.
        var plannedDestination: FileInfo?? = nil
        /// The source, opened while planning stat'ed it (a named file on NFS).
        var opened: OpenedReader? = nil
        /// The temporary to write, created while planning looked the destination up.
        var precreated: Precreated? = nil
    }

    /// A source opened ahead of its copy, taken at most once; what nobody took is closed at the end.
    private final class OpenedReader: Sendable {
        private let reader: Mutex<(any FileReader)?>
        init(_ reader: any FileReader) { self.reader = Mutex(reader) }
        func take() -> (any FileReader)? { reader.withLock { r in defer { r = nil }; return r } }
    }
    private let openedReaders = Mutex<[OpenedReader]>([])

    /// A temporary created while planning looked its destination up (see ``precreate(_:source:at:)``),
    /// written by the copy at most once; one the copy did not take is removed when planning
    /// finds it unneeded, or at the end.
    private final class Precreated: Sendable {
        let path: FilePath
        let fileSystem: any CopyFileSystem
        /// The mode the create gave the file exactly; nil when the copy must still set one.
        let createdMode: Int?
        private let writer: Mutex<(any FileWriter)?>
        init(path: FilePath, fileSystem: any CopyFileSystem, createdMode: Int?, writer: any FileWriter) {
            self.path = path
            self.fileSystem = fileSystem
            self.createdMode = createdMode
            self.writer = Mutex(writer)
        }
        func take() -> (any FileWriter)? { writer.withLock { w in defer { w = nil }; return w } }
    }
    private let precreatedTemporaries = Mutex<[Precreated]>([])
    private let discarding = Mutex<[Task<Void, Never>]>([])

    private struct Tally: Sendable {
        var files = 0, directories = 0, symlinks = 0, skipped = 0, deleted = 0
        var skippedReasons: [String: Int] = [:]
        var failures: [CopyFailure] = []
    }

    /// The mounts of both sides, shared by every file in flight: a context keeps
    /// many requests in flight on its one connection, so more mounts would only
    /// add connections (and, on a cut, more of them to wait out).
    private struct Mounters: Sendable {
        let source: Mounter
        let destination: Mounter
        /// Both sides closed at once (with `NFSOptions.unmountsOnClose` on, an NFS-to-NFS copy
        /// waits for one UMNT, not two).
        func closeAll() async {
            async let source: Void = source.closeAll()
            await destination.closeAll()
            await source
        }
    }

    private let options: CopyOptions
    private let progress: ProgressLine
    private let log: @Sendable (String) -> Void
    private let tally = Mutex(Tally())
    private let umask: Int
    /// Destination directories already searched for stale temporaries, by displayed path.
    private let swept = Mutex<Set<String>>([])
    /// The temporaries this run writes, by displayed path: never stale. An exclusive
    /// create stores its verifier in the new file's times (NFSv3 and v4 alike), so
    /// until its first WRITE a temporary of ours can look years old to a sweep that
    /// lists its directory meanwhile (another file's, or its own, sent with the create).
    private let ownTemporaries = Mutex<Set<String>>([])
    /// The destination directories of a recursive copy, and what each held when first
    /// listed: one READDIRPLUS answers "is something there?" for every file copied
    /// into it, where a lookup per file would cost a round trip each.
    private let plannedDirectories = Mutex<Set<FilePath>>([])
    private let listings = Mutex<[FilePath: Listing]>([:])

    /// One destination directory's entries, listed by the first file that needs them while
    /// the others wait: files that all missed at once would each list it (18 READDIRPLUS
    /// exchanges per directory were counted with 16 files in flight). nil: it could not be listed.
    private typealias Listing = Once<[FilePath.Component: FileInfo]?>

    private func listingSlot(_ directory: FilePath) -> Listing {
        listings.withLock { all in
            if let slot = all[directory] { return slot }
            let slot = Listing()
            all[directory] = slot
            return slot
        }
    }
    /// For `--delete`: the names each planned destination directory's source holds
    /// (excluded ones too: the filter protects those), and the destination
    /// directories with a failure anywhere below them, which nothing is deleted from.
    private let sourceNames = Mutex<[FilePath: Set<FilePath.Component>]>([:])
    private let failedDirectories = Mutex<Set<FilePath>>([])
    /// For `--dry-run`: the steps decided, with the order they are reported in.
    private let planned = Mutex<[(order: Int, step: PlannedAction)]>([])
    /// Destination directories that existed before the copy (with what lstat said), and those the
    /// copy then changed: one left unchanged whose mode, owner and times are already right needs
    /// no SETATTR, so a repeated copy with nothing to do costs no round trips per directory; and
    /// only one that existed can hold anything for `--delete` to remove.
    private let existingDirectories = Mutex<[FilePath: FileInfo]>([:])
    private let changedDirectories = Mutex<Set<FilePath>>([])

    /// The temporary names nfs-cp writes under, and the age after which one is
    /// taken to be left by a run that could not remove it (a vanished server).
    static let temporaryPrefix = ".nfs-cp-", temporarySuffix = ".part"
    static let staleTemporaryAge: Int64 = 86_400

    /// `log` receives one line per problem as it happens, and per file with `verbose`.
    public init(options: CopyOptions, progress: ProgressLine, log: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.progress = progress
        self.log = log
        self.umask = Int(Platform.fileCreationMask)
    }

    /// Records a failure; `destination` (a destination path) keeps `--delete` out of every directory above it.
    private func fail(_ path: String, _ error: any Error, destination: FilePath? = nil) {
        if var directory = destination {
            failedDirectories.withLock { failed in
                while !directory.components.isEmpty || directory.root != nil {
                    guard failed.insert(directory).inserted else { break }
                    if directory.components.isEmpty { break }
                    directory.removeLastComponent()
                }
            }
        }
        let reason: String
        switch error {
        case let e as FileOperationError: reason = e.description
        case let e as NFSError: reason = FileOperationError(e, displayPath: e.url ?? path).description
        default: reason = "\(error)"
        }
        tally.withLock { $0.failures.append(CopyFailure(path: path, reason: reason)) }
        log(reason)
    }

    /// Copies `sources` to `destination`; problems with single files are
    /// collected in the summary and the copy goes on with the others.
    /// - Throws: ``CopyUsageError`` for operands that cannot work together.
    public func run(sources: [Operand], destination: Operand, verbose: Bool) async throws -> CopySummary {
        let mounters = Mounters(source: Mounter(options: options.nfs), destination: Mounter(options: options.nfs))
        return try await finally {
            try await run(sources: sources, destination: destination, verbose: verbose, mounters: mounters)
        } then: {
            for opened in openedReaders.withLock({ $0 }) { try? await opened.take()?.close() }
            for task in discarding.withLock({ $0 }) { await task.value }
            for temporary in precreatedTemporaries.withLock({ $0 }) { await discard(temporary) }
            await mounters.closeAll()
        }
    }

    private func run(sources: [Operand], destination: Operand, verbose: Bool, mounters: Mounters) async throws -> CopySummary {
        let start = ContinuousClock.now
        let items = try await plan(sources: sources, destination: destination, mounters: mounters)
        let files = items.filter { $0.kind == .file }
        progress.setTotals(bytes: files.reduce(0) { $0 + $1.info.size }, files: files.count)
        progress.startDrawing()
        defer { progress.finish() }

        let directories = items.filter { $0.kind == .directory }
        plannedDirectories.withLock { $0 = Set(directories.map(\.destinationPath)) }
        await forEachLevel(of: items, deepestFirst: false) { item, order in
            await self.createDirectory(item, order: order, mounters: mounters)
        }

        // A task per file, their requests sharing each side's one connection. Of them, at most
        // `largeFilesInFlight` are large: each of those holds tens of MiB of buffers.
        let work = items.enumerated().filter { $0.element.kind != .directory }
        await inFlight(work, heavy: { $0.info.size > UInt64(Self.largeFileSize) }, heavyLimit: Self.largeFilesInFlight) {
            item, order in await self.copy(item, order: order, mounters: mounters, verbose: verbose)
        }

        // Deepest first: a directory's deletions and its final mode and times come after its subdirectories'.
        // A dry run lists deletions after everything else, in that order too, whichever finishes first.
        await forEachLevel(of: items, deepestFirst: true) { item, order in
            if self.options.delete {
                await self.deleteExtras(item, order: 2 * items.count - order, mounters: mounters, verbose: verbose)
            }
            if !self.options.dryRun { await self.finishDirectory(item, mounters: mounters) }
        }

        let seconds = (ContinuousClock.now - start).inSeconds
        let t = tally.withLock { $0 }
        let plan = options.dryRun ? planned.withLock { $0 }.enumerated()
            .sorted { ($0.element.order, $0.offset) < ($1.element.order, $1.offset) }.map(\.element.step) : nil
        return CopySummary(files: t.files, directories: t.directories, symlinks: t.symlinks, skipped: t.skipped,
                           skippedReasons: t.skippedReasons, deleted: t.deleted, plan: plan,
                           bytes: progress.bytes, seconds: seconds,
                           bytesPerSecond: seconds > 0 ? Double(progress.bytes) / seconds : 0,
                           failures: t.failures, interrupted: Interrupt.signal != nil)
    }

    // MARK: Planning

    private static func baseName(_ operand: Operand) -> FilePath.Component? {
        switch operand {
        case .local(let path): path.lastComponent
        case .nfs(let url): url.filePath.lastComponent
        }
    }

    private func plan(sources: [Operand], destination: Operand,
                      mounters: Mounters) async throws -> [Item] {
        guard !sources.isEmpty else { return [] }
        // The first source's mount and stat go out with the destination's: NFS→NFS
        // waits for one mount, not two in turn.
        async let firstSource = Result { try await self.statSource(sources[0], mounters: mounters) }
        let target: (fileSystem: any CopyFileSystem, path: FilePath)
        let targetInfo: FileInfo?
        // What is at the destination itself; a link is then followed, as stat would.
        let targetEntry: FileInfo?
        let precreated: Precreated?
        do {
            target = try await mounters.destination.resolve(destination)
            // A single local file's temporary is created beside the destination's lookup: when
            // the destination turns out to be no directory, the first WRITE waits one round trip
            // less; when it is one, the temporary is removed below.
            let single: Result<StatedSource, any Error>?
            if sources.count == 1, case .local = sources[0], !destination.namesDirectory {
                single = await firstSource
            } else {
                single = nil
            }
            async let created = precreate(sources[0], source: single, at: target)
            do {
                targetEntry = try await target.fileSystem.info(target.path, followSymlinks: false)
            } catch {
                if let temporary = await created { await discard(temporary) }
                throw error
            }
            precreated = await created
            targetInfo = try await Self.followingLink(targetEntry, at: target.path, in: target.fileSystem)
        } catch {
            fail(destination.description, error)
            return []
        }
        let intoDirectory = targetInfo?.kind == .directory
        // Removed beside the copy into the directory, not before it.
        if let precreated, intoDirectory { discarding.withLock { $0.append(Task { await self.discard(precreated) }) } }
        if sources.count > 1 && !intoDirectory {
            throw CopyUsageError(description: "target '\(destination)' is not a directory")
        }
        var items: [Item] = []
        for (index, source) in sources.enumerated() {
            do {
                let stated = index == 0 ? try await firstSource.get() : try await statSource(source, mounters: mounters)
                let (fs, path, info) = (stated.fileSystem, stated.path, stated.info)
                let opened = stated.reader.map(OpenedReader.init)
                if let opened { openedReaders.withLock { $0.append(opened) } }
                let destinationPath = intoDirectory ? Self.baseName(source).map { target.path.appending($0) } ?? target.path
                                                    : target.path
                switch info.kind {
                case .file:
                    // A file named on the command line is matched by its name.
                    let name = Self.baseName(source).map { $0.bytes } ?? []
                    if options.filter.excludes(name, isDirectory: false) { continue }
                    items.append(Item(kind: .file, source: source, sourcePath: path, destination: destination,
                                      destinationPath: destinationPath, info: info, relative: name,
                                      plannedDestination: intoDirectory ? nil : .some(targetEntry), opened: opened,
                                      precreated: intoDirectory ? nil : precreated))
                case .directory:
                    guard options.recursive else {
                        throw FileOperationError(operation: "copy", path: fs.display(path),
                                                 reason: "is a directory (use -r to copy directories)")
                    }
                    // The destination itself was looked at already, unless this goes into it.
                    let entry = intoDirectory ? try await target.fileSystem.info(destinationPath, followSymlinks: false)
                                              : targetEntry
                    if let existing = try await Self.followingLink(entry, at: destinationPath, in: target.fileSystem),
                       existing.kind != .directory {
                        throw FileOperationError(operation: "overwrite", path: target.fileSystem.display(destinationPath),
                                                 reason: "a directory cannot replace a file")
                    }
                    items.append(Item(kind: .directory, source: source, sourcePath: path, destination: destination,
                                      destinationPath: destinationPath, info: info, relative: [],
                                      plannedDestination: .some(entry)))
                    do {
                        items += try await planTree(fs, path, relative: [], source: source, into: destinationPath,
                                                    destination: destination, listed: stated.entries)
                    } catch {
                        fail(fs.display(path), error, destination: destinationPath)
                    }
                case .symlink, .other:
                    throw FileOperationError(operation: "copy", path: fs.display(path), reason: "not a regular file or directory")
                }
            } catch let error as CopyUsageError {
                throw error
            } catch {
                fail(source.description, error)
            }
        }
        return items
    }

    /// Creates the temporary a single local file will be written to, in the directory that would
    /// hold it were the destination no directory, with the sweep of that directory beside it. nil
    /// when there is no single local source (the caller passes `source` nil then, and when the
    /// destination ends in `/`),
    /// when the copy could decide not to write (`-n`, `-u`, `--checksum`, a dry run), writes
    /// elsewhere (`--inplace`, a local destination, a source that is no file, or one a filter
    /// leaves out), or when the create fails: the copy then creates as usual and reports why.
    private func precreate(_ operand: Operand, source: Result<StatedSource, any Error>?,
                           at target: (fileSystem: any CopyFileSystem, path: FilePath)) async -> Precreated? {
        guard target.fileSystem is NFSFileSystem, let name = Self.baseName(operand),
              !options.inplace, !options.dryRun, !options.noClobber, !options.update, !options.checksum,
              case .success(let stated)? = source, stated.info.kind == .file,
              !options.filter.excludes(name.bytes, isDirectory: false), target.path.lastComponent != nil else { return nil }
        let fs = target.fileSystem
        let directory = target.path.removingLastComponent()
        let path = Self.temporaryPath(in: directory)
        let permissions = intendedPermissions(stated.info)
        let exact = createGivesMode(permissions)
        ownTemporaries.withLock { _ = $0.insert(fs.display(path)) }
        async let swept: Void = sweepStaleTemporaries(in: directory, of: fs)
        let writer = try? await fs.createExclusive(path, permissions: exact ? permissions : 0o600, expectedSize: stated.info.size)
        await swept
        guard let writer else {
            ownTemporaries.withLock { _ = $0.remove(fs.display(path)) }
            return nil
        }
        let temporary = Precreated(path: path, fileSystem: fs, createdMode: exact ? permissions : nil, writer: writer)
        precreatedTemporaries.withLock { $0.append(temporary) }
        return temporary
    }

    /// Removes a temporary made by ``precreate(_:source:at:)`` unless the copy took it.
    private func discard(_ temporary: Precreated) async {
        guard let writer = temporary.take() else { return }
        try? await writer.close()
        try? await temporary.fileSystem.remove(temporary.path)
        ownTemporaries.withLock { _ = $0.remove(temporary.fileSystem.display(temporary.path)) }
    }

    /// Whether an exclusive create gives a file `permissions` exactly: the owner may write,
    /// no set-id or sticky bit, nothing a local create's umask would clear.
    private func createGivesMode(_ permissions: Int) -> Bool {
        !options.inplace && permissions & 0o200 != 0 && permissions & 0o7000 == 0 && permissions & umask == 0
    }

    /// What planning learns of a source operand before it plans the source.
    private struct StatedSource: Sendable {
        let fileSystem: any CopyFileSystem
        let path: FilePath
        /// What is there, following a link.
        let info: FileInfo
        /// A file on NFS, opened at once; nil for anything else, and when that open failed
        /// (the copy's own open reports why).
        let reader: (any FileReader)?
        /// A directory on NFS, listed at once with `-r`; nil for anything else, and when that
        /// listing failed (planning lists it again, and reports why).
        let entries: [(name: FilePath.Component, info: FileInfo?)]?
    }

    /// Where a source operand is, and what. A source on NFS is opened at once too,
    /// its LOOKUP and ACCESS in flight with the stat's: a file then waits two round
    /// trips less before its first READ. With `-r` it is listed at once as well, as
    /// it is most likely a directory: a tree's first READDIRPLUS goes out with the
    /// stat, not two round trips after it.
    private func statSource(_ source: Operand, mounters: Mounters) async throws -> StatedSource {
        let (fs, path) = try await mounters.source.resolve(source)
        let onNFS = fs is NFSFileSystem
        async let opening = onNFS ? try? await fs.openRead(path) : nil
        // Not awaited unless the source is a directory: otherwise cancelled when this returns.
        async let listing = onNFS && options.recursive ? try? await fs.entries(path) : nil
        let found: FileInfo?
        do { found = try await fs.info(path, followSymlinks: true) } catch {
            try? await opening?.close()
            throw error
        }
        guard let info = found else {
            try? await opening?.close()
            throw FileOperationError(operation: "stat", path: fs.display(path), reason: "No such file or directory")
        }
        guard info.kind == .file else {
            try? await opening?.close()
            return StatedSource(fileSystem: fs, path: path, info: info, reader: nil,
                                entries: info.kind == .directory ? await listing : nil)
        }
        return StatedSource(fileSystem: fs, path: path, info: info, reader: await opening, entries: nil)
    }

    /// `name`'s path below the source operand (`a/b.txt`) from its directory's (`a`, or none at the root).
    private static func relative(_ directory: [UInt8], _ name: FilePath.Component) -> [UInt8] {
        directory.isEmpty ? name.bytes : directory + [UInt8(ascii: "/")] + name.bytes
    }

    /// The items below `directory`, depth first in name order; `relative` is `directory`'s
    /// path below the source operand, which filters match. Its subdirectories are planned
    /// at once, each in a task of its own: on a network every listing is a round trip,
    /// and a tree's listings then overlap instead of following one another.
    /// `listed`: `directory`'s entries, when they were listed already.
    private func planTree(_ fs: any CopyFileSystem, _ directory: FilePath, relative: [UInt8], source: Operand,
                          into target: FilePath, destination: Operand,
                          listed: [(name: FilePath.Component, info: FileInfo?)]? = nil) async throws -> [Item] {
        var items: [Item] = []
        let unsorted = if let listed { listed } else { try await fs.entries(directory) }
        // Sorted by bytes, as `ls` in the C locale: every name has a place, whatever its encoding.
        let entries = unsorted.sorted(by: { $0.name.bytes.lexicographicallyPrecedes($1.name.bytes) })
        if options.delete { sourceNames.withLock { $0[target] = Set(entries.map(\.name)) } }
        for (name, found) in entries {
            let path = directory.appending(name)
            let to = target.appending(name)
            let below = Self.relative(relative, name)
            // Excluded: neither looked at nor walked, and (with --delete) kept at the destination.
            // (A name that vanished is left out if the rules would leave it out as either kind.)
            let excluded = found.map { options.filter.excludes(below, isDirectory: $0.kind == .directory) }
                ?? (options.filter.excludes(below, isDirectory: false) || options.filter.excludes(below, isDirectory: true))
            if excluded { continue }
            guard let info = found else {
                // Listed a moment ago, gone now: said, never silently left out.
                fail(fs.display(path), FileOperationError(operation: "stat", path: fs.display(path),
                                                           reason: "No such file or directory (it vanished after the listing)"),
                     destination: target)
                continue
            }
            let kind: Kind
            switch info.kind {
            case .file: kind = .file
            case .directory: kind = .directory
            case .symlink: kind = .symlink
            case .other:
                fail(fs.display(path), FileOperationError(operation: "copy", path: fs.display(path),
                                                           reason: "special file skipped"), destination: target)
                continue
            }
            items.append(Item(kind: kind, source: source, sourcePath: path, destination: destination,
                              destinationPath: to, info: info, relative: below))
        }
        let directories = items.indices.filter { items[$0].kind == .directory }
        let subtrees = await withTaskGroup(of: (Int, [Item]).self) { group in
            for (n, i) in directories.enumerated() {
                let item = items[i]
                group.addTask {
                    do {
                        return (n, try await self.planTree(fs, item.sourcePath, relative: item.relative, source: source,
                                                           into: item.destinationPath, destination: destination))
                    } catch {
                        self.fail(fs.display(item.sourcePath), error, destination: item.destinationPath)
                        return (n, [])
                    }
                }
            }
            var subtrees = [[Item]](repeating: [], count: directories.count)
            for await (n, planned) in group { subtrees[n] = planned }
            return subtrees
        }
        // Each subtree right after its directory, as a walk one directory at a time would give them.
        var ordered: [Item] = []
        ordered.reserveCapacity(items.count + subtrees.reduce(0) { $0 + $1.count })
        var next = 0
        for (i, item) in items.enumerated() {
            ordered.append(item)
            if next < directories.count && directories[next] == i {
                ordered += subtrees[next]
                next += 1
            }
        }
        return ordered
    }

    // MARK: Directories

    private func intendedPermissions(_ info: FileInfo) -> Int {
        options.preserve ? info.permissions : info.permissions & ~umask
    }

    /// Runs `body` on the planned directories level by level (shallowest first, or
    /// deepest first), each level's at once with `jobs` in flight: a tree of many
    /// directories waits a few round trips per level, not per directory. An
    /// interrupt starts no more.
    private func forEachLevel(of items: [Item], deepestFirst: Bool,
                              _ body: @escaping @Sendable (Item, Int) async -> Void) async {
        let directories = items.enumerated().filter { $0.element.kind == .directory }
        let levels = Dictionary(grouping: directories) { $0.element.destinationPath.components.count }
        let depths = levels.keys.sorted()
        for depth in deepestFirst ? depths.reversed() : depths where Interrupt.signal == nil {
            await inFlight(levels[depth]!, body)
        }
    }

    /// Runs `body` on each of `work` (its place in the plan, and the item) in order, a task
    /// each, `jobs` at once: each that ends lets the next in. Of them at most `heavyLimit`
    /// are `heavy`; a heavy item waits, and the light ones behind it with it, until one
    /// ends. An interrupt lets no more in.
    private func inFlight(_ work: [(offset: Int, element: Item)], heavy: (Item) -> Bool = { _ in false }, heavyLimit: Int = .max,
                          _ body: @escaping @Sendable (Item, Int) async -> Void) async {
        await withTaskGroup(of: Bool.self) { group in
            var next = 0, running = 0, heavyRunning = 0
            while true {
                while next < work.count && running < max(1, options.jobs) && Interrupt.signal == nil {
                    let (order, item) = work[next]
                    let isHeavy = heavy(item)
                    if isHeavy && heavyRunning >= heavyLimit { break }
                    next += 1
                    running += 1
                    if isHeavy { heavyRunning += 1 }
                    group.addTask {
                        await body(item, order)
                        return isHeavy
                    }
                }
                guard let wasHeavy = await group.next() else { break }
                running -= 1
                if wasHeavy { heavyRunning -= 1 }
            }
        }
    }

    private func createDirectory(_ item: Item, order: Int, mounters: Mounters) async {
        var shown = item.destination.description
        do {
            let fs = try await mounters.destination.resolve(item.destination).fileSystem
            shown = fs.display(item.destinationPath)
            let found = try await Self.followingLink(try await destinationEntry(of: item, in: fs),
                                                     at: item.destinationPath, in: fs)
            if let existing = found {
                guard existing.kind == .directory else {
                    throw FileOperationError(operation: "mkdir", path: shown, reason: "File exists")
                }
                existingDirectories.withLock { $0[item.destinationPath] = existing }
                return
            }
            if options.dryRun {
                note(order, "mkdir", shown)
                // Known to be empty: what would go into it needs no lookups.
                _ = await listingSlot(item.destinationPath).value { [:] }
                return
            }
            // Owner rwx while its contents are copied; the final mode is set afterwards.
            changing(item.destinationPath)
            try await fs.makeDirectory(item.destinationPath, permissions: intendedPermissions(item.info) | 0o700)
            tally.withLock { $0.directories += 1 }
            // Made empty just now: what goes into it is looked up in no listing of the server's.
            _ = await listingSlot(item.destinationPath).value { [:] }
        } catch {
            fail(shown, error, destination: item.destinationPath)
        }
    }

    /// libnfs sets times in microseconds (`nfs_utimes` takes a `timeval`), so a time it set
    /// compares equal to its source only to the microsecond.
    static func sameMicrosecond(_ a: NFSTimestamp, _ b: NFSTimestamp) -> Bool {
        a.seconds == b.seconds && a.nanoseconds / 1000 == b.nanoseconds / 1000
    }

    /// Notes that the directory holding `path` is about to change.
    private func changing(_ path: FilePath) {
        changedDirectories.withLock { _ = $0.insert(path.removingLastComponent()) }
    }

    private func note(_ order: Int, _ action: String, _ path: String, reason: String? = nil) {
        planned.withLock { $0.append((order, PlannedAction(action: action, path: path, reason: reason))) }
    }

    private func skip(_ order: Int, _ path: String, reason: String, verbose: Bool) {
        tally.withLock {
            $0.skipped += 1
            $0.skippedReasons[reason, default: 0] += 1
        }
        progress.fileFinished()
        if options.dryRun { note(order, "skip", path, reason: reason) }
        else if verbose { log("skipped \(path): \(reason)") }
    }

    // MARK: Deleting

    /// `--delete`: removes what the destination directory holds and its source
    /// does not, unless a rule excludes it or something under the directory failed.
    private func deleteExtras(_ item: Item, order: Int, mounters: Mounters, verbose: Bool) async {
        // A directory this copy created (or, in a dry run, would create) holds nothing extra.
        guard existingDirectories.withLock({ $0[item.destinationPath] != nil }),
              !failedDirectories.withLock({ $0.contains(item.destinationPath) }),
              let names = sourceNames.withLock({ $0[item.destinationPath] }) else { return }
        var shown = item.destinationPath.escapedDescription
        do {
            let fs = try await mounters.destination.resolve(item.destination).fileSystem
            shown = fs.display(item.destinationPath)
            for (name, found) in try await fs.entries(item.destinationPath) where !names.contains(name) {
                guard let info = found, !Self.isTemporary(name) else { continue }
                if options.filter.excludes(Self.relative(item.relative, name), isDirectory: info.kind == .directory) { continue }
                let path = item.destinationPath.appending(name)
                do {
                    try await removeTree(path, info, in: fs, order: order, verbose: verbose)
                } catch {
                    fail(fs.display(path), error)
                }
                if Interrupt.signal != nil { return }
            }
        } catch {
            fail(shown, error)
        }
    }

    /// Removes `path` and, for a directory, everything in it (contents first).
    private func removeTree(_ path: FilePath, _ info: FileInfo, in fs: any CopyFileSystem, order: Int, verbose: Bool) async throws {
        if info.kind == .directory {
            for (name, found) in try await fs.entries(path) {
                guard let found else { continue }
                try await removeTree(path.appending(name), found, in: fs, order: order, verbose: verbose)
            }
        }
        let shown = fs.display(path)
        if options.dryRun {
            note(order, "delete", shown)
        } else {
            changing(path)
            if info.kind == .directory { try await fs.removeDirectory(path) } else { try await fs.remove(path) }
            if verbose { log("deleted \(shown)") }
        }
        tally.withLock { $0.deleted += 1 }
    }

    private func finishDirectory(_ item: Item, mounters: Mounters) async {
        var shown = item.destinationPath.escapedDescription
        do {
            let fs = try await mounters.destination.resolve(item.destination).fileSystem
            shown = fs.display(item.destinationPath)
            let permissions = intendedPermissions(item.info)
            let unchanged = changedDirectories.withLock { $0.contains(item.destinationPath) } ? nil
                : existingDirectories.withLock { $0[item.destinationPath] }
            var attributes = FileAttributes()
            if unchanged?.permissions != permissions { attributes.permissions = permissions }
            if options.preserve {
                if geteuid() == 0, unchanged.map({ $0.uid != item.info.uid || $0.gid != item.info.gid }) ?? true {
                    attributes.owner = (item.info.uid, item.info.gid)
                }
                if !(unchanged.map { Self.sameMicrosecond($0.modificationTime, item.info.modificationTime) } ?? false) {
                    attributes.times = (item.info.accessTime, item.info.modificationTime)
                }
            }
            if !attributes.isEmpty { try await fs.setAttributes(item.destinationPath, attributes, writtenBy: nil) }
        } catch {
            fail(shown, error)
        }
    }

    // MARK: Files

    private func copy(_ item: Item, order: Int, mounters: Mounters, verbose: Bool) async {
        var shown = item.source.description
        do {
            let (sourceFS, _) = try await mounters.source.resolve(item.source)
            let (targetFS, _) = try await mounters.destination.resolve(item.destination)
            shown = sourceFS.display(item.sourcePath)
            let existing = try await destinationEntry(of: item, in: targetFS)
            if existing != nil && options.noClobber {
                return skip(order, targetFS.display(item.destinationPath), reason: "exists", verbose: verbose)
            }
            if let existing, let reason = try await unchanged(item, existing, sourceFS: sourceFS, targetFS: targetFS) {
                return skip(order, targetFS.display(item.destinationPath), reason: reason, verbose: verbose)
            }
            if existing?.kind == .directory {
                throw FileOperationError(operation: "overwrite", path: targetFS.display(item.destinationPath),
                                         reason: "Is a directory")
            }
            if options.dryRun {
                return note(order, existing == nil ? "copy" : "replace", targetFS.display(item.destinationPath))
            }
            if item.kind == .symlink {
                let target = try await sourceFS.readSymlink(item.sourcePath)
                changing(item.destinationPath)
                if existing != nil { try await targetFS.remove(item.destinationPath) }
                try await targetFS.makeSymlink(target, at: item.destinationPath)
                tally.withLock { $0.symlinks += 1 }
                if verbose { log("\(shown) -> \(targetFS.display(item.destinationPath)) (symlink)") }
                return
            }
            var attempt = 1
            var (source, target) = (sourceFS, targetFS)
            while true {
                do {
                    try await copyFile(item, from: source, to: target, existing: existing, mounters: mounters)
                    break
                } catch let error as FileOperationError where error.code == .connectionReset && attempt < Self.attempts {
                    // A fresh mount: libnfs 4.0.0 cannot resume a connection that broke mid-reply.
                    log("\(error); copying \(shown) again on a new connection (attempt \(attempt + 1) of \(Self.attempts))")
                    source = try await mounters.source.resolve(item.source).fileSystem
                    target = try await mounters.destination.resolve(item.destination).fileSystem
                } catch is Reconnected where attempt < Self.attempts {
                    log("the connection to the server was re-established while \(targetFS.display(item.destinationPath)) "
                        + "was written, so writes may have been lost; copying it again (attempt \(attempt + 1) of \(Self.attempts))")
                } catch is Reconnected {
                    throw FileOperationError(operation: "write", path: targetFS.display(item.destinationPath),
                                             reason: "the connection to the server was re-established during each of "
                                                 + "\(Self.attempts) attempts, so writes may have been lost")
                }
                attempt += 1
            }
            tally.withLock { $0.files += 1 }
            progress.fileFinished()
            if verbose { log("\(shown) -> \(targetFS.display(item.destinationPath))") }
        } catch {
            fail(shown, error, destination: item.destinationPath)
        }
    }

    /// With `--update` or `--checksum`, why the destination needs no copy; nil when it does.
    private func unchanged(_ item: Item, _ existing: FileInfo, sourceFS: any CopyFileSystem,
                           targetFS: any CopyFileSystem) async throws -> String? {
        guard options.update || options.checksum, existing.kind == item.info.kind else { return nil }
        if item.kind == .symlink {
            async let source = sourceFS.readSymlink(item.sourcePath)
            let same = try await targetFS.readSymlink(item.destinationPath) == source
            return same ? "same link" : nil
        }
        guard item.kind == .file, existing.size == item.info.size else { return nil }
        if options.checksum {
            let chunk = max(sourceFS.chunkSize, targetFS.chunkSize)
            // Both sides read at once.
            async let source = Self.digest(item.sourcePath, in: sourceFS, chunk: chunk)
            let target = try await Self.digest(item.destinationPath, in: targetFS, chunk: chunk)
            return try await source == target ? "same checksum" : nil
        }
        return existing.modificationTime.seconds == item.info.modificationTime.seconds ? "same size and time" : nil
    }

    private static func digest(_ path: FilePath, in fs: any CopyFileSystem, chunk: Int) async throws -> [UInt8] {
        let reader = try await fs.openRead(path)
        return try await finally { try await sha256(of: reader, chunkSize: chunk) } then: { try? await reader.close() }
    }

    /// What stat says of `path`, given what lstat said (`entry`): a second lookup only for a link.
    private static func followingLink(_ entry: FileInfo?, at path: FilePath, in fs: any CopyFileSystem) async throws -> FileInfo? {
        entry?.kind == .symlink ? try await fs.info(path, followSymlinks: true) : entry
    }

    /// What is at `item`'s destination (lstat-like): what planning found there for a file or
    /// directory named on the command line, else ``destinationInfo(_:in:)``.
    private func destinationEntry(of item: Item, in fs: any CopyFileSystem) async throws -> FileInfo? {
        if let planned = item.plannedDestination { return planned }
        return try await destinationInfo(item.destinationPath, in: fs)
    }

    /// What is at `path` in the destination now (lstat-like), from its directory's
    /// listing when the copy planned that directory; nil when nothing is there.
    private func destinationInfo(_ path: FilePath, in fs: any CopyFileSystem) async throws -> FileInfo? {
        if let name = path.lastComponent, let listing = await listing(of: path.removingLastComponent(), in: fs) {
            return listing[name]
        }
        return try await fs.info(path, followSymlinks: false)
    }

    /// A planned destination directory's entries, listed once; nil for a directory the
    /// copy did not plan, or one that cannot be listed (the caller then looks names up).
    private func listing(of directory: FilePath, in fs: any CopyFileSystem) async -> [FilePath.Component: FileInfo]? {
        guard plannedDirectories.withLock({ $0.contains(directory) }) else { return nil }
        return await listingSlot(directory).value {
            (try? await fs.entries(directory)).map { entries in
                var listing: [FilePath.Component: FileInfo] = [:]
                for (name, info) in entries { if let info { listing[name] = info } }
                return listing
            }
        }
    }

    /// A file above this size can hold up to about 30 MiB while in flight (chunks, the
    /// library's read-ahead and write-behind); at most `largeFilesInFlight` such files
    /// are, so memory stays bounded at any `-j` (64 smaller ones hold well under 64 MiB).
    static let largeFileSize = 256 << 10
    static let largeFilesInFlight = 4

    /// A file is copied again after a lost connection (on a fresh mount, which fails
    /// at once when the server is really gone) or a reconnect during it, this many times in all.
    static let attempts = 3

    /// The NFS connection a file was written over changed before its COMMIT:
    /// a restarted server may have dropped unstable writes without a word.
    private struct Reconnected: Error {}

    private func copyFile(_ item: Item, from sourceFS: any CopyFileSystem, to targetFS: any CopyFileSystem,
                          existing: FileInfo?, mounters: Mounters) async throws {
        // As cp: a new file gets the source's mode less the umask, an existing one keeps its mode.
        let permissions = options.preserve ? item.info.permissions
            : (existing.map(\.permissions) ?? intendedPermissions(item.info))
        let reader: any FileReader
        if let opened = item.opened?.take() { reader = opened } else { reader = try await sourceFS.openRead(item.sourcePath, as: item.info) }
        reader.willReadWhole(size: item.info.size)
        try await finally {
            try await copyFile(item, reader: reader, from: sourceFS, to: targetFS, permissions: permissions)
        } then: {
            try? await reader.close()
        }
    }

    private func copyFile(_ item: Item, reader: any FileReader, from sourceFS: any CopyFileSystem,
                          to targetFS: any CopyFileSystem, permissions: Int) async throws {
        let directory = item.destinationPath.removingLastComponent()
        // Taken by the first attempt only; another writes a temporary of its own.
        let precreated = item.precreated.flatMap { temporary in temporary.take().map { (temporary: temporary, writer: $0) } }
        let writePath = precreated?.temporary.path ?? (options.inplace ? item.destinationPath
            : Self.temporaryPath(in: directory))
        changing(item.destinationPath)
        if !options.inplace { ownTemporaries.withLock { _ = $0.insert(targetFS.display(writePath)) } }
        // Renamed or removed by the time this returns (or left to a later run's sweep, after an interrupt).
        defer { if !options.inplace { ownTemporaries.withLock { _ = $0.remove(targetFS.display(writePath)) } } }
        // The sweep's listing goes out with the create: it removes no temporary of this run's.
        async let swept: Void = options.inplace ? () : sweepStaleTemporaries(in: directory, of: targetFS)
        // A mode the create itself gives exactly needs no SETATTR: one round trip less per file.
        // A temporary made while planning has the mode a new file gets, which an existing
        // destination's mode may not be.
        let createdMode = precreated.map(\.temporary.createdMode) ?? (createGivesMode(permissions) ? permissions : nil)
        let writer: any FileWriter
        do {
            if let precreated {
                writer = precreated.writer
            } else {
                writer = options.inplace ? try await targetFS.createTruncating(writePath, permissions: permissions)
                                         : try await targetFS.createExclusive(writePath, permissions: createdMode ?? 0o600,
                                                                             expectedSize: item.info.size)
            }
        } catch var error as FileOperationError {
            // The temporary name means nothing to the user; the destination does.
            error.operation = "create"
            error.path = targetFS.display(item.destinationPath)
            throw error
        }
        await swept
        // Closed at most once (a second close of a local descriptor could hit one another
        // file in flight has reused); the temporary is removed on every path that does not finish.
        var closed = false
        do {
            // Errors name the destination: the temporary name means nothing to the user.
            do {
                try await writeFile(item, reader: reader, writer: writer, closed: &closed, writePath: writePath,
                                    sourceFS: sourceFS, targetFS: targetFS,
                                    permissions: createdMode == permissions ? nil : permissions)
            } catch var error as FileOperationError where !options.inplace && error.path == targetFS.display(writePath) {
                error.path = targetFS.display(item.destinationPath)
                throw error
            }
            if !options.inplace { try await targetFS.rename(writePath, to: item.destinationPath) }
        } catch {
            if !closed { try? await writer.close() }
            if !options.inplace { try? await targetFS.remove(writePath) }
            throw error
        }
    }

    /// `permissions` is nil when the create already gave the file its mode.
    private func writeFile(_ item: Item, reader: any FileReader, writer: any FileWriter, closed: inout Bool,
                           writePath: FilePath, sourceFS: any CopyFileSystem, targetFS: any CopyFileSystem,
                           permissions: Int?) async throws {
        let chunk = max(sourceFS.chunkSize, targetFS.chunkSize)
        let connection = writer.connectionIdentity
        let digest: [UInt8]?
        if !options.verify && !options.sparse, let direct = reader as? any DescriptorCopying, direct.copiesToDescriptors,
           let local = writer as? LocalFile {
            // No digest to make and no holes to keep: the bytes go from each READ's reply into the file.
            do { try await direct.copy(size: item.info.size, to: local.fd, progress: progress) } catch let error as Errno {
                throw FileOperationError(code: error, operation: "write", path: local.path)
            }
            digest = nil
        } else {
            digest = try await transfer(from: reader, to: writer, size: item.info.size, chunkSize: chunk,
                                        sourceName: sourceFS.display(item.sourcePath), hashing: options.verify,
                                        sparse: options.sparse, progress: progress)
        }
        // Through the open file, without a lookup, while the owner may still write
        // (a mode without owner write is set by path after the close, as before).
        let setEarly = (!options.inplace || options.preserve) && (permissions ?? 0) & 0o200 != 0
        if setEarly, let permissions { try await writer.setPermissions(permissions) }
        closed = true
        // The close sends what is buffered and COMMITs it: one COMMIT per file.
        try await writer.close()
        guard writer.connectionIdentity == connection else { throw Reconnected() }
        try await finishFile(item, at: writePath, in: targetFS, writtenBy: writer, permissions: setEarly ? nil : permissions,
                             digest: digest, chunk: chunk)
    }

    /// Removes this tool's temporaries over a day old from `directory`, once
    /// per directory and run; a failure here is no reason to fail the copy.
    private func sweepStaleTemporaries(in directory: FilePath, of fs: any CopyFileSystem) async {
        guard swept.withLock({ $0.insert(fs.display(directory)).inserted }) else { return }
        let candidates: [(FilePath.Component, FileInfo)]
        if let listing = await listing(of: directory, in: fs) {
            candidates = listing.filter { Self.isTemporary($0.key) }.map { ($0.key, $0.value) }
        } else {
            guard let names = try? await fs.list(directory) else { return }
            var found: [(FilePath.Component, FileInfo)] = []
            // This run's own temporaries, which the listing may catch, cost no lookup the copy would wait for.
            for name in names where Self.isTemporary(name)
                && !ownTemporaries.withLock({ $0.contains(fs.display(directory.appending(name))) }) {
                if let info = try? await fs.info(directory.appending(name), followSymlinks: false) { found.append((name, info)) }
            }
            candidates = found
        }
        let now = Int64(Date().timeIntervalSince1970)
        for (name, info) in candidates {
            let path = directory.appending(name)
            guard info.kind == .file, now - info.modificationTime.seconds > Self.staleTemporaryAge,
                  !ownTemporaries.withLock({ $0.contains(fs.display(path)) }) else { continue }
            if (try? await fs.remove(path)) != nil { log("removed \(fs.display(path)), a temporary over a day old") }
        }
    }

    /// A new temporary name in `directory`, random so that runs writing there at once do not meet.
    static func temporaryPath(in directory: FilePath) -> FilePath {
        directory.appending("\(temporaryPrefix)\(UInt64.random(in: 0...UInt64.max).hex)\(temporarySuffix)")
    }

    /// A name this tool writes under (another run's may be in progress: `--delete` leaves them).
    static func isTemporary(_ name: FilePath.Component) -> Bool {
        name.string.hasPrefix(temporaryPrefix) && name.string.hasSuffix(temporarySuffix)
    }

    /// `permissions` is nil when they were set through the open file. What is left to set
    /// goes at once, on the handle `writer` wrote through where it has one (on NFSv3 one
    /// SETATTR, where by path each attribute was a walk and a call: 6 RPCs for `-p` as root).
    private func finishFile(_ item: Item, at path: FilePath, in fs: any CopyFileSystem, writtenBy writer: any FileWriter,
                            permissions: Int?, digest: [UInt8]?, chunk: Int) async throws {
        var attributes = FileAttributes()
        if let permissions, !options.inplace || options.preserve { attributes.permissions = permissions }
        if options.preserve {
            if geteuid() == 0 { attributes.owner = (item.info.uid, item.info.gid) }
            attributes.times = (item.info.accessTime, item.info.modificationTime)
        }
        if !attributes.isEmpty { try await fs.setAttributes(path, attributes, writtenBy: writer) }
        if let digest {
            guard try await Self.digest(path, in: fs, chunk: chunk) == digest else {
                throw FileOperationError(operation: "verify", path: fs.display(item.destinationPath),
                                         reason: "SHA-256 of the copy differs from the source")
            }
        }
    }
}

extension Result where Failure == any Error {
    /// The outcome of an async `body`, as `Result(catching:)` gives a synchronous one's.
    init(_ body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

extension UInt64 {
    var hex: String { String(self, radix: 16) }
}

/// Runs `body`, then `cleanup` whether or not it threw: a `defer` that can await.
func finally<T>(_ body: () async throws -> T, then cleanup: () async -> Void) async throws -> T {
    let result: T
    do { result = try await body() } catch {
        await cleanup()
        throw error
    }
    await cleanup()
    return result
}
