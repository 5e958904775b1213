package dev.interlayer.cli;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.MessageOrBuilder;
import dev.interlayer.control.Constraints;
import dev.interlayer.control.ControlClient;
import dev.interlayer.control.TlsProblems;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.function.Function;
import picocli.CommandLine.Model.CommandSpec;

/**
 * Runs control calls for the CLI: checks the request against the IDL's constraints before sending (the
 * agent checks again), and turns gRPC errors into messages and exit codes.
 */
final class Calls {

    /** Read on the first check only: a call whose request has nothing to check starts without parsing them. */
    private static final class Builtin {
        static final Constraints CONSTRAINTS = Constraints.builtin();
    }
    /** How the agent's refusal of a connection starts (the GOAWAY's text, which grpc puts in the status). */
    private static final String REFUSED = "the agent refused this connection";

    private Calls() {}

    /** Refuses a request that the agent's structure check would refuse, with the same message (exit 5). */
    static <T extends Message> T checked(T request) {
        Optional<Constraints.Violation> v = Builtin.CONSTRAINTS.check(request);
        if (v.isPresent()) {
            throw new CliFailure(Main.INVALID, "invalid request: " + v.get().message());
        }
        return request;
    }

    /** Calls the agent and maps any error to a {@link CliFailure}. */
    static <R> R call(ClientOptions o, ControlClient c, Function<ControlClient, R> call) {
        try {
            return call.apply(c);
        } catch (StatusRuntimeException e) {
            throw failure(o, e);
        }
    }

    /** The user's message and exit code for a failed call. */
    static CliFailure failure(ClientOptions o, StatusRuntimeException e) {
        Status s = e.getStatus();
        String d = s.getDescription() == null ? s.getCode().toString() : s.getDescription();
        int refused = d.indexOf(REFUSED);
        if (refused >= 0) {
            // the agent answered the connection with a GOAWAY that says why (too many connections of this user)
            return new CliFailure(Main.UNREACHABLE, d.substring(refused));
        }
        return switch (s.getCode()) {
            case UNAVAILABLE -> unreachable(o, d, e);
            case PERMISSION_DENIED, UNAUTHENTICATED -> new CliFailure(Main.DENIED, d);
            case INVALID_ARGUMENT -> new CliFailure(Main.INVALID, d);
            case DEADLINE_EXCEEDED -> new CliFailure(Main.UNREACHABLE, "the agent at " + o.where() + " did not answer in time: " + d);
            default -> new CliFailure(Main.FAILURE, d);
        };
    }

    private static CliFailure unreachable(ClientOptions o, String detail, StatusRuntimeException e) {
        if (o.remote != null) {
            String tls = TlsProblems.seenByClient(e, o.remote, o.cert, o.ca);
            if (tls != null) {
                return new CliFailure(Main.UNREACHABLE, "TLS handshake with the agent at " + o.remote + " failed: " + tls);
            }
            return new CliFailure(Main.UNREACHABLE, "no agent answered at " + o.remote + " (" + detail + "); check the address, that the agent"
                    + " has agent.control.tls set, and that your certificate is signed by its client-ca");
        }
        Path socket = o.socketPath();
        if (!Files.exists(socket)) {
            return new CliFailure(Main.UNREACHABLE, "no agent at " + socket + ": start one with interlayer run --config FILE,"
                    + " or give its socket with --socket PATH");
        }
        String cause = e.getCause() == null ? detail : e.getCause().getMessage();
        if (cause != null && cause.toLowerCase().contains("permission denied")) {
            return new CliFailure(Main.UNREACHABLE, "cannot connect to " + socket + ": permission denied; the socket or its folder is not open to"
                    + " your user (the agent creates it with mode 0666; check the folder's permissions)");
        }
        return new CliFailure(Main.UNREACHABLE, "no agent answers at " + socket + " (" + cause + "); it may have stopped: start one with"
                + " interlayer run --config FILE");
    }

    /** Prints a message as one line of JSON: every field, 64-bit numbers as numbers ({@link JsonOut}). */
    static void json(PrintWriter out, MessageOrBuilder m) {
        try {
            out.println(JsonOut.print(m));
        } catch (InvalidProtocolBufferException e) {
            throw new CliFailure(Main.FAILURE, "cannot print the answer as JSON: " + e.getMessage());
        }
    }

    /** How a command prints an answer as text: returns the exit code. */
    @FunctionalInterface
    interface Text<R> {
        int print(PrintWriter out, R answer) throws Exception;
    }

    /**
     * The whole of a command that makes one call: opens the control socket, makes {@code call}, prints the answer as one
     * line of JSON ({@code --json}, exit 0) or with {@code text}; a failure goes to stderr. Returns the exit code.
     */
    static <R extends MessageOrBuilder> int unary(CommandSpec spec, ClientOptions o, Function<ControlClient, R> call, Text<R> text) {
        PrintWriter out = spec.commandLine().getOut();
        return run(spec.commandLine().getErr(), () -> {
            try (ControlClient c = o.open()) {
                R r = call(o, c, call);
                if (o.json) {
                    json(out, r);
                    return Main.OK;
                }
                return text.print(out, r);
            }
        });
    }

    /** Runs a command body, printing a failure to stderr; returns the exit code. */
    static int run(PrintWriter err, Callable<Integer> body) {
        try {
            return body.call();
        } catch (CliFailure f) {
            err.println("interlayer: " + f.getMessage());
            err.flush();
            return f.code;
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            err.println("interlayer: " + e.getMessage());
            err.flush();
            return Main.FAILURE;
        }
    }
}
