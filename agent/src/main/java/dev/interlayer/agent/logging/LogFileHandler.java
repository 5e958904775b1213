package dev.interlayer.agent.logging;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.logging.ErrorManager;
import java.util.logging.Formatter;
import java.util.logging.LogRecord;
import java.util.logging.StreamHandler;

/**
 * Appends log records to a file, rotating it by size as the audit file is rotated: once a record has taken the file to
 * {@code maxSize} or past it, {@code agent.log} becomes {@code agent.log.1}, {@code .1} becomes {@code .2}, and so on up to
 * {@code keep}; the oldest is deleted. A record is never split across two files.
 *
 * <p>Threading: {@code publish} is synchronized, as {@link StreamHandler}'s.
 */
final class LogFileHandler extends StreamHandler {

    private final Path file;
    private final long maxSize;
    private final int keep;
    private long size;

    /** Opens {@code file} for appending (creating it and its folder). */
    LogFileHandler(Path file, long maxSize, int keep, Formatter format) throws IOException {
        this.file = file;
        this.maxSize = maxSize;
        this.keep = keep;
        setFormatter(format);
        Path dir = file.toAbsolutePath().getParent();
        if (dir != null) Files.createDirectories(dir);
        open();
    }

    private void open() throws IOException {
        size = Files.exists(file) ? Files.size(file) : 0;
        OutputStream out = Files.newOutputStream(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        setOutputStream(new FilterOutputStream(out) {
            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                out.write(b, off, len);
                size += len;
            }

            @Override
            public void write(int b) throws IOException {
                out.write(b);
                size++;
            }
        });
    }

    /** Writes the record, then rotates the file once it has reached {@code maxSize} (so a file ends with a whole line). */
    @Override
    public synchronized void publish(LogRecord r) {
        super.publish(r);
        flush();
        if (maxSize > 0 && size >= maxSize) {
            try {
                rotate();
            } catch (IOException e) {
                reportError("cannot rotate the log file " + file + "; writing on to it", e, ErrorManager.OPEN_FAILURE);
            }
        }
    }

    private void rotate() throws IOException {
        flush();
        Files.deleteIfExists(rotated(keep));
        for (int i = keep - 1; i >= 1; i--) {
            if (Files.exists(rotated(i))) Files.move(rotated(i), rotated(i + 1), StandardCopyOption.REPLACE_EXISTING);
        }
        Files.move(file, rotated(1), StandardCopyOption.REPLACE_EXISTING);
        open(); // closes the old stream
    }

    private Path rotated(int n) {
        return file.resolveSibling(file.getFileName() + "." + n);
    }
}
