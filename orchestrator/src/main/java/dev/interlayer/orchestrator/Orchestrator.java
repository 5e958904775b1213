package dev.interlayer.orchestrator;

import dev.interlayer.control.ControlException;
import dev.interlayer.control.ControlServer;
import dev.interlayer.control.ControlSettings;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * A running orchestrator: its keys ({@link Authority}), the fleet's state in PostgreSQL ({@link Store}, the embedded
 * server unless a URL is given), and its endpoint (orchestrator.proto behind the control plane's security module) on a
 * Unix socket for operators and on TCP with TLS for agents.
 *
 * <pre>
 *   interlayer fleet ──uds (uid)──┐                        ┌─▶ Fleet       ─┐
 *                                 ├─▶ SecurityModule ──────┼─▶ Enrollment  ─┼─▶ Store ─▶ PostgreSQL
 *   agents ──TLS (cert, or none ──┘   structure, policy,   └─▶ Agents      ─┘     ▲
 *            to enroll)               audit                     │ streams          │ revision polled
 *                                                               └──── AgentStreams ┘
 * </pre>
 *
 * <p>Lifecycle: {@link #start} brings up database, keys, endpoint and the pusher in that order, or nothing;
 * {@link #close} takes them down in reverse.
 */
public final class Orchestrator implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.orchestrator");

    private final EmbeddedDatabase database;
    private final Store store;
    private final Authority authority;
    private final AgentStreams streams;
    private final Recorder recorder;
    private final ControlServer endpoint;
    private final Dashboard dashboard;
    private final RolloutRunner rollouts;

    private Orchestrator(EmbeddedDatabase database, Store store, Authority authority, AgentStreams streams, Recorder recorder,
                         ControlServer endpoint, Dashboard dashboard, RolloutRunner rollouts) {
        this.database = database;
        this.store = store;
        this.authority = authority;
        this.streams = streams;
        this.recorder = recorder;
        this.endpoint = endpoint;
        this.dashboard = dashboard;
        this.rollouts = rollouts;
    }

    /**
     * Starts an orchestrator.
     *
     * @throws OrchestratorException saying what is wrong and what to do; whatever had started is stopped again
     */
    public static Orchestrator start(OrchestratorSettings s) throws OrchestratorException {
        EmbeddedDatabase db = null;
        Store store = null;
        AgentStreams streams = null;
        Recorder recorder = null;
        try {
            Authority authority = Authority.open(s.dataDir(), s.names());
            if (s.databaseUrl() == null) {
                db = EmbeddedDatabase.start(s.dataDir(), s.pgUser());
                store = Store.open(db.url(), db.user(), db.password());
            } else {
                store = Store.open(s.databaseUrl(), s.databaseUser(), s.databasePassword());
            }
            String instance = Store.INSTANCE;
            try {
                store.checkKeys(FleetEndpoint.sha256(authority.caCertificate().getEncoded()), authority.signingKeyPem(), instance, s.dataDir());
            } catch (java.security.cert.CertificateEncodingException e) {
                throw new OrchestratorException("cannot read the CA certificate in " + s.dataDir() + ": " + e.getMessage(), e);
            }
            streams = new AgentStreams(store);
            recorder = new Recorder(store);
            ControlSettings cs = ControlSettings.at(s.socket()).withPolicy(s.policy())
                    .withTls(new ControlSettings.Tls(s.listen(), authority.serverCertificate(), authority.serverKey(), authority.caFile()));
            if (s.auditFile() != null) {
                cs = cs.withAuditFile(s.auditFile(), dev.interlayer.control.AuditLog.FileOptions.DEFAULT);
            }
            ControlServer endpoint;
            try {
                endpoint = ControlServer.start(cs, new OrchestratorServices(store, authority, streams, recorder, instance));
            } catch (ControlException e) {
                throw new OrchestratorException("the orchestrator's endpoint did not start: " + e.getMessage(), e);
            }
            Dashboard dashboard = null;
            if (s.dashboard() != null) {
                try {
                    dashboard = Dashboard.start(store, endpoint.security(), s.dashboard(), s.names());
                } catch (OrchestratorException e) {
                    endpoint.close();
                    throw e;
                }
            }
            streams.start();
            RolloutRunner rollouts = new RolloutRunner(new RolloutStore(store), new Leadership(store, instance), streams::changed);
            rollouts.start();
            LOG.log(Level.INFO, "orchestrator: serving operators on {0} and agents on {1} (TLS; CA {2}); data in {3}", s.socket(),
                    endpoint.tlsAddress(), authority.caFile(), s.dataDir());
            return new Orchestrator(db, store, authority, streams, recorder, endpoint, dashboard, rollouts);
        } catch (OrchestratorException | RuntimeException | Error e) {
            if (streams != null) {
                streams.close();
            }
            if (recorder != null) {
                recorder.close();
            }
            if (store != null) {
                store.close();
            }
            if (db != null) {
                db.close();
            }
            throw e;
        }
    }

    /** The address agents connect to. */
    public InetSocketAddress agentAddress() {
        return endpoint.tlsAddress();
    }

    /** Where the dashboard is served, or null when it is off. */
    public InetSocketAddress dashboardAddress() {
        return dashboard == null ? null : dashboard.address();
    }

    /** The operators' Unix socket. */
    public Path socket() {
        return endpoint.socket();
    }

    /** The CA certificate agents must trust ({@code agent.orchestrator.ca}). */
    public Path caFile() {
        return authority.caFile();
    }

    /** The fleet's state. */
    public Store store() {
        return store;
    }

    /** The embedded database, or null when an external one is used. */
    public EmbeddedDatabase database() {
        return database;
    }

    /** The security module's audit log. */
    public dev.interlayer.control.AuditLog audit() {
        return endpoint.audit();
    }

    @Override
    public void close() {
        LOG.log(Level.INFO, "orchestrator: stopping: rollouts, dashboard, agent streams, endpoint, database");
        rollouts.close();
        if (dashboard != null) {
            dashboard.close();
        }
        streams.close();
        endpoint.close();
        recorder.close();
        store.close();
        if (database != null) {
            database.close();
        }
    }
}
