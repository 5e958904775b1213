package dev.interlayer.bench.suite;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The processes the suite started: each peer, backend and agent runs in the foreground as its own process, is
 * stopped by its PID (SIGTERM, then SIGKILL after a grace period, then SIGKILL for any descendant left) and is
 * stopped at the latest when the suite ends, normally or by a signal.
 *
 * <p>Only processes started here are ever signalled; nothing is looked up by name.
 */
final class Procs implements AutoCloseable {

    /** A started process with its log file. */
    record Proc(String name, Process process, Path log) {
        long pid() {
            return process.pid();
        }

        boolean alive() {
            return process.isAlive();
        }

        /** The last {@code n} lines of its log, for an error message. */
        String tail(int n) {
            try {
                List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
                return String.join("\n", lines.subList(Math.max(0, lines.size() - n), lines.size()));
            } catch (IOException | RuntimeException e) {
                return "(no log: " + e.getMessage() + ")";
            }
        }
    }

    /** Commands being run to completion ({@link #run}): killed too when the suite is stopped. */
    private static final Set<Process> FOREGROUND = ConcurrentHashMap.newKeySet();

    private final Path logDir;
    private final List<Proc> running = new ArrayList<>();
    private final Thread hook;
    private boolean shuttingDown;

    /**
     * Registers a shutdown hook that, when the JVM ends before {@link #close()} (SIGTERM, Ctrl-C), refuses new
     * starts, stops every process still running and then runs {@code atExit} (the suite removes its temp dir).
     */
    Procs(Path logDir, Runnable atExit) {
        this.logDir = logDir;
        this.hook = new Thread(() -> {
            synchronized (this) {
                shuttingDown = true;
            }
            stopAll();
            atExit.run();
        }, "bench-suite-cleanup");
        Runtime.getRuntime().addShutdownHook(hook);
    }

    /** Starts {@code cmd} in the foreground with stdin from /dev/null and stdout+stderr to {@code logs/NAME.log}. */
    synchronized Proc start(String name, List<String> cmd, Map<String, String> env) throws IOException {
        if (shuttingDown) {
            throw new IOException("the suite is stopping: " + name + " not started");
        }
        Path log = logDir.resolve(name + ".log");
        Files.writeString(logDir.resolve(name + ".cmd"), String.join(" ", cmd) + "\n");
        ProcessBuilder pb = new ProcessBuilder(cmd)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .redirectInput(new File("/dev/null"));
        pb.environment().putAll(env);
        Proc p = new Proc(name, pb.start(), log);
        running.add(p);
        return p;
    }

    /** Stops one process: SIGTERM, up to {@code graceMillis} to exit, then SIGKILL, then SIGKILL for descendants left. */
    void stop(Proc p, long graceMillis) {
        synchronized (this) {
            running.remove(p);
        }
        List<ProcessHandle> kids = p.process().descendants().toList();
        if (p.alive()) {
            p.process().destroy();
            try {
                if (!p.process().waitFor(graceMillis, TimeUnit.MILLISECONDS)) {
                    p.process().destroyForcibly();
                    p.process().waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                p.process().destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
        for (ProcessHandle k : kids) {
            if (k.isAlive()) {
                k.destroyForcibly();
            }
        }
    }

    void stop(Proc p) {
        stop(p, 5_000);
    }

    /** Stops everything still running, newest first, and kills any command being run to completion. */
    void stopAll() {
        for (Process p : FOREGROUND) {
            p.destroyForcibly();
        }
        List<Proc> left;
        synchronized (this) {
            left = new ArrayList<>(running);
        }
        for (int i = left.size() - 1; i >= 0; i--) {
            stop(left.get(i), 3_000);
        }
    }

    /** Waits until every port in {@code ports} is listening, the process exits, or 30 s pass. */
    static void awaitListening(Proc p, Set<Integer> ports) throws BenchException {
        awaitListening(p, ports, false);
    }

    /** {@link #awaitListening(Proc, Set)} for TCP, or with {@code udp} until a UDP socket is bound on every port. */
    static void awaitListening(Proc p, Set<Integer> ports, boolean udp) throws BenchException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            if ((udp ? ProcFs.udpBoundPorts() : ProcFs.listeningPorts()).containsAll(ports)) {
                return;
            }
            if (!p.alive()) {
                throw new BenchException(p.name() + " exited (status " + p.process().exitValue()
                        + ") before listening on " + ports + "; its log ends with:\n" + p.tail(20));
            }
            sleep(10);   // the cold test times the start with this
        }
        throw new BenchException(p.name() + " did not listen on " + ports + " within 30 s; its log ends with:\n" + p.tail(20));
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /** Stops everything and removes the shutdown hook (the suite ran in-process and is done). */
    @Override
    public void close() {
        stopAll();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // the JVM is already shutting down: the hook runs (or ran) stopAll itself
        }
    }

    /** What a command run to completion left: its exit status (-1 if it was killed at its time limit) and output. */
    record Ran(int status, String output) {
        boolean timedOut() {
            return status == -1;
        }
    }

    /**
     * Runs {@code cmd} to completion under a time limit, stdout and stderr to {@code out}; on the limit it is
     * killed (SIGTERM, 2 s, SIGKILL). The caller's thread waits, so the JVM reaps it: its CPU time shows in this
     * JVM's cutime/cstime afterwards.
     */
    static Ran run(List<String> cmd, Path out, long timeoutMillis) throws IOException {
        return run(cmd, out, timeoutMillis, Map.of());
    }

    /** {@link #run(List, Path, long)} with {@code env} added to the environment. */
    static Ran run(List<String> cmd, Path out, long timeoutMillis, Map<String, String> env) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile())
                .redirectInput(new File("/dev/null"));
        pb.environment().putAll(env);
        Process p = pb.start();
        FOREGROUND.add(p);
        int status;
        try {
            if (p.waitFor(timeoutMillis, TimeUnit.MILLISECONDS)) {
                status = p.exitValue();
            } else {
                p.destroy();
                if (!p.waitFor(2, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    p.waitFor();
                }
                status = -1;
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while running " + cmd.getFirst(), e);
        } finally {
            FOREGROUND.remove(p);
        }
        return new Ran(status, Files.readString(out, StandardCharsets.UTF_8));
    }

    /** Runs a short command (a version query, jcmd) and returns its output, or "" when it cannot run. */
    static String capture(long timeoutSeconds, String... cmd) {
        try {
            Path out = Files.createTempFile("bench-suite-capture", ".txt");
            try {
                return run(List.of(cmd), out, timeoutSeconds * 1000).output();
            } finally {
                Files.deleteIfExists(out);
            }
        } catch (IOException e) {
            return "";
        }
    }
}
