package dev.interlayer.orchestrator;

import dev.interlayer.orchestrator.v1.EnrollRequest;
import dev.interlayer.orchestrator.v1.EnrollResponse;
import dev.interlayer.orchestrator.v1.EnrollmentGrpc;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.security.GeneralSecurityException;
import java.security.cert.X509Certificate;

/** {@code Enrollment}: an agent trades a one-time token for its client certificate. */
final class EnrollmentEndpoint extends EnrollmentGrpc.EnrollmentImplBase {

    private static final System.Logger LOG = System.getLogger("interlayer.orchestrator");

    private final Store store;
    private final Authority authority;

    EnrollmentEndpoint(Store store, Authority authority) {
        this.store = store;
        this.authority = authority;
    }

    @Override
    public void enroll(EnrollRequest r, StreamObserver<EnrollResponse> out) {
        String from = Peer.current().address();
        try {
            Authority.agentKey(r.getPublicKey().toByteArray()); // a bad key is refused before the token is used up
        } catch (GeneralSecurityException e) {
            throw Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException();
        }
        java.math.BigInteger number = authority.newSerial();
        String serial = number.toString(16);
        Store.Enrolled e;
        try {
            e = store.enroll(FleetEndpoint.hash(r.getToken()), from, serial);
        } catch (Store.Refused x) {
            LOG.log(Level.WARNING, "orchestrator: enrollment from {0} refused: {1}", from, x.getMessage());
            throw Status.PERMISSION_DENIED.withDescription(x.getMessage()).asRuntimeException();
        } catch (Store.Unavailable x) {
            throw FleetEndpoint.status(x);
        }
        try {
            X509Certificate issued = authority.issueAgent(e.agent(), r.getPublicKey().toByteArray(), number);
            String ca = Authority.Pem.of(authority.caCertificate());
            LOG.log(Level.INFO, "orchestrator: agent {0} enrolled from {1} (certificate serial {2}, labels {3})", e.agent(), from, serial, e.labels());
            out.onNext(EnrollResponse.newBuilder().setAgent(e.agent()).setCertificatePem(Authority.Pem.of(issued) + ca).setCaPem(ca)
                    .setSigningKeyPem(authority.signingKeyPem()).build());
            out.onCompleted();
        } catch (GeneralSecurityException | IOException x) {
            throw Status.INTERNAL.withDescription("cannot issue the certificate: " + x.getMessage()).asRuntimeException();
        }
    }
}
