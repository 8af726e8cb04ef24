/*
 * A small ECDI declarant terminal (DTS) in Java 17, as a vendor would connect it to the conformance
 * harness through the command driver (docs/drivers.md). One file, JDK only: javax.xml.crypto for the
 * XML signatures of Table 8-1, java.net.http for the SOAP Send of §3.
 *
 *   java EcdiDts.java lodge   --work-dir DIR --document FILE --type 929 [--function 8] <settings>
 *   java EcdiDts.java query   --work-dir DIR --submission MESSAGE-ID --type 929 <settings>
 *   java EcdiDts.java resume  --work-dir DIR <settings>           (REL-09: after a restart)
 *   java EcdiDts.java configure --work-dir DIR --environment test <settings>   (CAP-07: shows the environment)
 *   java EcdiDts.java journal --work-dir DIR                       (SEC-06 export on stdout)
 *   java EcdiDts.java serve --statement FILE     (server mode: one JSON request per stdin line, see serve())
 *
 * <settings> (CAP-07): --endpoint --tls-ca --sign-anchor --p12 --user-id --tax-code --declarant-name
 * --office --office-name --profile --time-scale --statement. Passwords come from the environment
 * (ECDI_PASSWORD, ECDI_P12_PASSWORD), or in server mode from each request, and are never written
 * anywhere (SEC-01, SEC-02).
 *
 * It claims import and export only. It signs (RSA-SHA256, exclusive c14n, enveloped, Reference
 * URI="", X509Data), sends with per-attempt timeout and backoff retransmission of the same octets,
 * verifies every reply's signature against cgw_sign_anchor, checks correlation, polls after a 29, and
 * prints the Outcome JSON of docs/drivers.md. Deliberately small: it is an example, not a product
 * (no payment, amendment or cancellation; after a restart it resends only a message whose send operation
 * was cut short, it does not resume polling).
 */

import java.io.*;
import java.math.BigDecimal;
import java.net.URI;
import java.net.http.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.text.Normalizer;
import java.security.*;
import java.security.cert.*;
import java.time.*;
import java.time.format.DateTimeFormatter;
import java.util.*;
import java.util.regex.*;
import javax.net.ssl.*;
import javax.xml.XMLConstants;
import javax.xml.crypto.*;
import javax.xml.crypto.dsig.*;
import javax.xml.crypto.dsig.dom.*;
import javax.xml.crypto.dsig.keyinfo.*;
import javax.xml.crypto.dsig.spec.*;
import javax.xml.parsers.*;
import javax.xml.transform.*;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;
import org.w3c.dom.*;

public class EcdiDts {
    static final String ENV = "urn:ecdi:envelope:1", SVC = "urn:ecdi:service:1";
    static final String SOAP = "http://schemas.xmlsoap.org/soap/envelope/";
    static final String RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    static final long S_MAX = 5_242_880;                  // §2 S_max
    static final double T_POLL_MIN = 4;                   // §2 T_poll_min (profile 1.0)
    static final double T_SEND = 60;                      // §2 T_send (profile 1.0)
    static final Set<String> FINAL = Set.of("35", "272", "273");   // Table 7-2, 929/930 function 8
    static final ZoneOffset VN = ZoneOffset.ofHours(7);
    // §4.2 DateTime with seconds always written (OffsetDateTime.toString() drops ":00" seconds) and the offset
    static final DateTimeFormatter DATE_TIME = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ssXXX");
    static final PrintStream OUT = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);

    final Map<String, String> opt;
    final Map<String, String> secrets;                     // ECDI_PASSWORD, ECDI_P12_PASSWORD: never written anywhere
    final Map<String, String> statement;
    final Path work;
    final double scale;
    long lastAttemptStart;                                 // start of the latest attempt of any send operation
    final HttpClient http;
    final boolean plainEndpoint;                           // cgw_endpoint not https:// (TRN-10): nothing is sent
    final List<String> notifications = new ArrayList<>(), errors = new ArrayList<>(), warnings = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        System.setProperty("com.sun.org.apache.xml.internal.security.ignoreLineBreaks", "true"); // SIG-02
        Map<String, String> opt = new HashMap<>();
        for (int i = 1; i + 1 < args.length; i += 2) opt.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        if (args[0].equals("serve")) {
            serve(opt.get("statement"));
            return;
        }
        String document = opt.containsKey("document") ? Files.readString(Paths.get(opt.get("document"))) : null;
        Map<String, String> secrets = new HashMap<>();
        for (String name : List.of("ECDI_PASSWORD", "ECDI_P12_PASSWORD"))
            if (System.getenv(name) != null) secrets.put(name, System.getenv(name));
        String answer = act(args[0], opt, secrets, document);
        if (args[0].equals("journal")) OUT.print(answer);
        else OUT.println(answer);
    }

    /**
     * Server mode of the command driver (docs/drivers.md): one JVM for the whole session. Each stdin line is a
     * request — the action, the document as XML text, the environment with the passwords — and gets one stdout
     * line: the Outcome JSON, or {"error": ...} when the action could not be carried out. Every request carries
     * the whole environment, so the process keeps nothing between requests but what is in the work folder: a
     * process started again after a kill (REL-09) simply serves the next request. Ends when stdin closes.
     */
    static void serve(String statement) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.isBlank()) continue;
            String answer;
            try {
                Map<String, Object> request = Json.object(line);
                Map<String, Object> environment = Json.map(request.get("environment"));
                Map<String, String> opt = new HashMap<>(Map.of("statement", statement));
                for (var e : environment.entrySet())                     // work_dir -> --work-dir, ...
                    if (e.getValue() instanceof String v && !e.getKey().endsWith("password"))
                        opt.put(e.getKey().replace('_', '-'), v);
                for (String key : List.of("type", "function", "submission"))
                    if (request.get(key) instanceof String v) opt.put(key, v);
                Map<String, String> secrets = Map.of("ECDI_PASSWORD", (String) environment.get("password"),
                        "ECDI_P12_PASSWORD", (String) environment.get("p12_password"));
                String action = (String) request.get("action");
                answer = act(action, opt, secrets, (String) request.get("document"));
                if (action.equals("journal"))
                    answer = "[" + String.join(",", answer.lines().filter(l -> !l.isBlank()).toList()) + "]";
            } catch (Exception e) {
                e.printStackTrace();                                      // stderr: kept by the harness
                answer = "{\"error\":" + q(e.toString()) + "}";
            }
            OUT.println(answer);
        }
    }

    /** One user action over the settings in opt; the Outcome JSON (for journal: the JSON Lines export). */
    static String act(String action, Map<String, String> opt, Map<String, String> secrets, String document)
            throws Exception {
        Path work = Paths.get(opt.get("work-dir"));
        // TXT-06: the user interface follows the user's locale (vi-VN); nothing on the wire does
        Locale.setDefault(Locale.forLanguageTag(opt.getOrDefault("ui-locale", "vi-VN")));
        Files.createDirectories(work);
        if (action.equals("journal")) {
            Path journal = work.resolve("journal.jsonl");
            return Files.exists(journal) ? Files.readString(journal, StandardCharsets.UTF_8) : "";
        }
        if (action.equals("configure"))                     // CAP-07: show which environment the settings are for
            return configure(opt, work);
        EcdiDts dts = new EcdiDts(opt, secrets, work);
        Outcome outcome;
        try {
            if (dts.plainEndpoint) throw new Stop("local-error", "local-error", "TRN-10", "The gateway address "
                    + opt.get("endpoint") + " does not start with https:// and is refused (TRN-10). Nothing was sent.");
            outcome = action.equals("query") ? dts.query(opt.get("submission"), opt.get("type"))
                    : action.equals("resume") ? dts.resume()
                    : dts.lodge(document, opt.get("type"));
        } catch (Stop stop) {
            dts.tell(stop.kind, stop.code, stop.getMessage(), null, null);
            outcome = new Outcome(stop.state);
        }
        return dts.json(action, outcome);
    }

    EcdiDts(Map<String, String> opt, Map<String, String> secrets, Path work) throws Exception {
        this.opt = opt;
        this.secrets = secrets;
        this.work = work;
        this.statement = readStatement(Paths.get(opt.get("statement")));
        // CAP-08: the statement says time_scale_supported = true, so every timing is multiplied by s.
        this.scale = Double.parseDouble(opt.getOrDefault("time-scale", "1"));
        this.plainEndpoint = !opt.get("endpoint").startsWith("https://");     // TRN-10: refused at the first action
        SSLContext tls = tlsContext(Paths.get(opt.get("tls-ca")));
        if (!plainEndpoint) warmUp(tls, URI.create(opt.get("endpoint")));
        this.http = HttpClient.newBuilder().sslContext(tls)
                .sslParameters(tlsParameters())
                .version(HttpClient.Version.HTTP_1_1).followRedirects(HttpClient.Redirect.NEVER).build();
    }

    // ---------------------------------------------------------------------------------------------
    // User actions

    Outcome lodge(String document, String type) throws Exception {
        String content = prepare(document);                                              // DOC-02/03, TXT-02..06
        String reference = "J" + LocalDate.now(VN).format(DateTimeFormatter.BASIC_ISO_DATE) + "-"
                + UUID.randomUUID().toString().replace("-", "").substring(0, 12);      // ENV-05: new reference
        String messageId = UUID.randomUUID().toString();                                 // ENV-02
        byte[] text = sign(envelope(messageId, type, "8", reference, content));
        Files.createDirectories(work.resolve("messages"));
        Files.write(work.resolve("messages").resolve(messageId + ".xml"), text);         // REL-09: stored first
        journal("request-stored", messageId, messageId, null);
        return follow(text, messageId, type);
    }

    /** The send operation of a stored message and, after a 29, polling. A marker file says the operation
     *  ended (whatever its ending); a message without one was cut short by a crash (REL-09). */
    Outcome follow(byte[] text, String messageId, String type) throws Exception {
        Reply first;
        try {
            first = sendOperation(text, messageId, messageId, type, false);
        } finally {
            Files.writeString(work.resolve("messages").resolve(messageId + ".ended"), "");
        }
        Outcome out = new Outcome("unknown");
        out.messageId = messageId;
        if (first.transient_()) {                                                       // RPL-12: a 271
            showErrors(first, "271", "Rejected by customs at message level: the message was NOT recorded.", messageId);
            out.state = "rejected";
            return out;
        }
        Map<Integer, Reply> history = new TreeMap<>();
        accept(first, history, messageId, out);
        if ("29".equals(first.function)) poll(messageId, type, history, out);
        return out;
    }

    /** REL-09, after a restart: every stored message whose send operation did not end is sent again —
     *  the stored octets, same messageId, never a new message — and followed like a fresh lodgement. */
    Outcome resume() throws Exception {
        Outcome out = new Outcome("accepted");
        Path dir = work.resolve("messages");
        if (!Files.isDirectory(dir)) return out;
        List<Path> stored;
        try (var files = Files.list(dir)) {
            stored = files.filter(p -> p.getFileName().toString().endsWith(".xml")).sorted().toList();
        }
        for (Path p : stored) {
            String messageId = p.getFileName().toString().replaceFirst("\\.xml$", "");
            if (Files.exists(dir.resolve(messageId + ".ended"))) continue;
            byte[] text = Files.readAllBytes(p);
            Matcher type = Pattern.compile("<type>([0-9]{3})</type>").matcher(new String(text, StandardCharsets.UTF_8));
            if (!type.find()) continue;
            journal("resume", messageId, messageId, null);
            out = follow(text, messageId, type.group(1));
        }
        return out;
    }

    /** CAP-07: every setting comes from the command line (no rebuild); the user sees which environment is active. */
    static String configure(Map<String, String> opt, Path work) throws IOException {
        String env = opt.getOrDefault("environment", "test");
        String text = "Active environment: " + env.toUpperCase(Locale.ROOT) + " (" + env + ") - gateway "
                + opt.get("endpoint") + ", profile " + opt.get("profile") + ", time scale " + opt.get("time-scale") + ".";
        String shown = ",\"kind\":\"info\",\"code\":\"CAP-07\",\"text\":" + q(text);
        Files.writeString(work.resolve("journal.jsonl"), "{\"time\":" + q(OffsetDateTime.now(VN).toString())
                + ",\"user\":\"operator\",\"userId\":" + q(opt.get("user-id")) + ",\"messageId\":null,\"submission\":null,"
                + "\"event\":\"notification\"" + shown + "}\n", StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        return ("{\"action\":\"configure\",\"state\":\"accepted\",\"message_id\":null,\"status_function\":null,"
                + "\"reception_number\":null,\"declaration_number\":null,\"channel\":null,\"errors\":[],\"warnings\":[],"
                + "\"notifications\":[{" + shown.substring(1) + "}],\"raised\":null}");
    }

    Outcome query(String submission, String type) throws Exception {
        Outcome out = new Outcome("unknown");
        out.messageId = submission;
        Map<Integer, Reply> history = new TreeMap<>();
        Path lastAttempt = work.resolve("messages").resolve(submission + ".last-attempt");
        if (Files.exists(lastAttempt))                       // REL-08: T_send after the last attempt's start
            sleepUntil(Long.parseLong(Files.readString(lastAttempt).trim()) + seconds(T_SEND));
        Reply r = queryOnce(submission, type, 0);
        if (r == null) {                                                                  // RPL-07
            tell("transport-error", "RPL-07", "The answer to the query was malformed and was discarded; query again later.",
                 submission, null);
            return out;
        }
        if (r.transient_()) showErrors(r, r.function, "Customs answered " + r.function + " to the query.", submission);
        else accept(r, history, submission, out);
        return out;
    }

    /** REL-13/REL-14: query T_poll_min after the 29, then every poll_interval_s, until complete or poll_max_total_s. */
    void poll(String submission, String type, Map<Integer, Reply> history, Outcome out) throws Exception {
        long receipt = System.currentTimeMillis();
        long stopAt = receipt + seconds(pixit("poll_max_total_s"));
        long next = receipt + Math.max(seconds(T_POLL_MIN), 0);
        while (!complete(history)) {
            if (next >= stopAt) {
                tell("info", null, "The result has not been received yet; query it later (manual query).", submission, null);
                return;
            }
            sleepUntil(next);
            Reply r = queryOnce(submission, type, watermark(history));
            next = lastAttemptStart + seconds(pixit("poll_interval_s"));          // REL-13: from the latest attempt
            if (r == null) continue;                                                      // RPL-07: discarded
            if (r.transient_()) {
                if (r.codes().contains("E0002")) {
                    showErrors(r, "E0002", "Customs has no record of this submission.", submission);
                    out.state = "not-recorded";
                    return;
                }
                continue;                                                                 // RPL-13: 12 is no failure
            }
            accept(r, history, submission, out);
        }
    }

    Reply queryOnce(String submission, String type, int afterSequence) throws Exception {
        String messageId = UUID.randomUUID().toString();
        String content = "<Query xmlns=\"" + ENV + "\"><afterSequence>" + afterSequence + "</afterSequence></Query>";
        byte[] text = sign(envelope(messageId, type, "13", submission, content));
        journal("request-stored", messageId, submission, null);
        return sendOperation(text, messageId, submission, type, true);
    }

    /** A history entry: merged into the report, shown, ordered by sequence (RPL-09). */
    void accept(Reply r, Map<Integer, Reply> history, String submission, Outcome out) {
        if (history.putIfAbsent(r.sequence, r) != null) return;                           // RPL-08/09
        Reply highest = ((TreeMap<Integer, Reply>) history).lastEntry().getValue();
        out.statusFunction = highest.function;
        for (Reply e : history.values()) {
            if (e.reception != null) out.reception = e.reception;
            if (e.declaration != null) out.declaration = e.declaration;
            if (e.channel != null) out.channel = e.channel;
        }
        if (r.function.equals("272") || r.function.equals("273")) {
            showErrors(r, r.function, "Business error from customs (status " + r.function + ").", submission);
        } else {
            String text = switch (r.function) {
                case "29" -> "Customs recorded the submission: reception number " + r.reception + ".";
                case "30" -> "Declaration number " + r.declaration + " issued.";
                case "10" -> "Channel " + r.channel + " assigned.";
                case "35" -> "Cleared by customs.";
                default -> "status " + r.function;
            };
            tell("customs-result", r.function, text, submission, r.messageId);
        }
        for (String[] w : r.warnings) {                                                   // RPL-15
            warnings.add(errorJson(w));
            tell("warning", w[0], render(w), submission, r.messageId);
        }
        boolean failed = history.values().stream().anyMatch(e -> e.function.equals("272") || e.function.equals("273"));
        out.state = failed ? "business-error" : "35".equals(out.statusFunction) ? "cleared" : "accepted";
    }

    static int watermark(Map<Integer, Reply> history) {
        int n = 0;
        while (history.containsKey(n + 1)) n++;
        return n;
    }

    static boolean complete(Map<Integer, Reply> history) {
        int n = watermark(history);
        return history.values().stream().anyMatch(e -> FINAL.contains(e.function) && e.sequence <= n);
    }

    // ---------------------------------------------------------------------------------------------
    // Preparing the user's document before signing (DOC-02, DOC-03, TXT-02..TXT-06)

    static final String DEC = "urn:ecdi:declaration:1";
    static final int N_GOODS_MAX = 50;                                  // §2 N_goods_max
    // Text(n) fields of Tables 6-1 and 6-2 (parent/name) and their maximum length in code points (TXT-04)
    static final Map<String, Integer> TEXT_MAX = Map.of("Trader/name", 255, "Trader/address", 255,
            "Partner/name", 255, "Partner/address", 255, "Declaration/transportDocument", 35, "Invoice/number", 35,
            "GoodsItem/description", 200, "Declaration/notes", 500, "Amendment/reason", 500, "Cancellation/reason", 500);
    static final Set<String> LF_ALLOWED = Set.of("Declaration/notes", "Amendment/reason", "Cancellation/reason");

    /** The Content child as it will be signed: read without DTD (TXT-02), goods limit (DOC-02), NFC and LF
     *  (TXT-03/05), clean Text(n) values counted in code points (TXT-04/05), lineNo and the exact total (DOC-03)
     *  written in the §4.2 form whatever the locale (TXT-06). */
    String prepare(String document) throws Exception {
        Document doc;
        try {
            doc = parse(document.getBytes(StandardCharsets.UTF_8));
        } catch (org.xml.sax.SAXException e) {
            throw new Stop("refused", "local-error", "DOC-01", "The document cannot be read (" + e.getMessage()
                    + "); a DOCTYPE or malformed XML is not accepted. Nothing was sent.");
        }
        Element root = doc.getDocumentElement();
        NodeList goods = root.getElementsByTagNameNS(DEC, "GoodsItem");
        if (goods.getLength() > N_GOODS_MAX)
            throw new Stop("refused", "local-error", "DOC-02", "The declaration has " + goods.getLength()
                    + " goods items; at most " + N_GOODS_MAX + " are allowed in one declaration. Split the shipment into "
                    + "several declarations of at most " + N_GOODS_MAX + " goods items each. Nothing was sent.");
        tidy(root);
        BigDecimal total = BigDecimal.ZERO;
        for (int i = 0; i < goods.getLength(); i++) {
            Element item = (Element) goods.item(i);
            Element lineNo = child(item, "lineNo");
            if (lineNo != null) lineNo.setTextContent(Integer.toString(i + 1));                // DOC-03
            Element value = child(item, "value");
            try {
                total = total == null || value == null ? null : total.add(new BigDecimal(value.getTextContent()));
            } catch (NumberFormatException e) {
                total = null;                                     // not a decimal: the gateway will say so
            }
        }
        Element invoice = child(root, "Invoice"), totalValue = invoice == null ? null : child(invoice, "totalValue");
        if (totalValue != null && total != null && goods.getLength() > 0)
            totalValue.setTextContent(total.signum() == 0 ? "0" : total.stripTrailingZeros().toPlainString());
        Transformer t = TransformerFactory.newInstance().newTransformer();
        t.setOutputProperty(OutputKeys.OMIT_XML_DECLARATION, "yes");
        StringWriter out = new StringWriter();
        t.transform(new DOMSource(root), new StreamResult(out));
        return out.toString();
    }

    /** NFC and CR LF → LF in every text node, comments and PIs dropped (ENV-01); Text(n) values cleaned. */
    static void tidy(Node node) throws Stop {
        for (Node n = node.getFirstChild(), next; n != null; n = next) {
            next = n.getNextSibling();
            switch (n.getNodeType()) {
                case Node.TEXT_NODE, Node.CDATA_SECTION_NODE ->
                        n.setNodeValue(Normalizer.normalize(n.getNodeValue().replace("\r\n", "\n"), Normalizer.Form.NFC));
                case Node.ELEMENT_NODE -> tidy(n);
                case Node.COMMENT_NODE, Node.PROCESSING_INSTRUCTION_NODE -> node.removeChild(n);
                default -> { }
            }
        }
        Node parent = node.getParentNode();
        String key = (parent instanceof Element ? parent.getLocalName() : "") + "/" + node.getLocalName();
        Integer max = TEXT_MAX.get(key);
        if (max == null || !DEC.equals(node.getNamespaceURI())) return;
        String value = clean(node.getTextContent(), LF_ALLOWED.contains(key), key);
        int length = value.codePointCount(0, value.length());                                 // TXT-04
        if (length > max)
            throw new Stop("refused", "local-error", "TXT-04", key + " has " + length + " characters; at most " + max
                    + " are allowed. Shorten it; nothing was sent.");
        node.setTextContent(value);
    }

    /** TXT-05: white-space controls inside become a space (LF kept where allowed), the edges are trimmed, and
     *  any other control character is refused. */
    static String clean(String value, boolean lfAllowed, String where) throws Stop {
        StringBuilder b = new StringBuilder();
        for (char c : value.toCharArray())
            b.append(c == '\t' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x85 || (c == '\n' && !lfAllowed) ? ' ' : c);
        String s = b.toString();
        int start = 0, end = s.length();
        while (start < end && edge(s.charAt(start))) start++;
        while (end > start && edge(s.charAt(end - 1))) end--;
        s = s.substring(start, end);
        for (char c : s.toCharArray())
            if (Character.getType(c) == Character.CONTROL && !(lfAllowed && c == '\n'))
                throw new Stop("refused", "local-error", "TXT-05", where + " contains the control character U+"
                        + String.format(Locale.ROOT, "%04X", (int) c) + ", which a customs document may not hold. "
                        + "Correct the text; nothing was sent.");
        return s;
    }

    static boolean edge(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || Character.getType(c) == Character.CONTROL;
    }

    static Element child(Element parent, String local) {
        for (Node n = parent.getFirstChild(); n != null; n = n.getNextSibling())
            if (n instanceof Element e && local.equals(e.getLocalName()) && DEC.equals(e.getNamespaceURI())) return e;
        return null;
    }

    // ---------------------------------------------------------------------------------------------
    // Building and signing the message text (Tables 4-1, 8-1)

    String envelope(String messageId, String type, String function, String reference, String content) {
        String[][] header = {
            {"procedureType", "1"},
            {"Reference", null, "version", opt.get("profile").replaceFirst("^ecdi-", ""), "messageId", messageId},
            {"SendApplication", null, "name", statement.get("product"), "version", statement.get("version"),
             "companyName", statement.get("vendor"), "companyIdentity", statement.get("vendor_tax_code"),
             "createMessageIssue", OffsetDateTime.now(VN).format(DATE_TIME)},                     // ENV-03
            {"From", null, "name", opt.get("declarant-name"), "identity", opt.get("tax-code")},
            {"To", null, "name", opt.get("office-name"), "identity", opt.get("office")},
            {"Subject", null, "type", type, "function", function, "reference", reference,
             "sendApplication", installationId(), "receiveApplication", "CGW"},
        };
        StringBuilder xml = new StringBuilder("<Envelope xmlns=\"" + ENV + "\"><Header>");
        for (String[] group : header) {
            if (group[1] != null) { xml.append(element(group[0], group[1])); continue; }
            xml.append('<').append(group[0]).append('>');
            for (int i = 2; i < group.length; i += 2) xml.append(element(group[i], group[i + 1]));
            xml.append("</").append(group[0]).append('>');
        }
        return xml.append("</Header><Body><Content>").append(content).append("</Content></Body></Envelope>").toString();
    }

    byte[] sign(String unsigned) throws Exception {
        PrivateKey key;
        X509Certificate cert;
        try {                                                                                 // SEC-02
            KeyStore p12 = KeyStore.getInstance("PKCS12");
            try (InputStream in = Files.newInputStream(Paths.get(opt.get("p12")))) {
                p12.load(in, secret("ECDI_P12_PASSWORD").toCharArray());
            }
            String alias = Collections.list(p12.aliases()).stream().filter(a -> isKey(p12, a)).findFirst()
                    .orElseThrow(() -> new KeyStoreException("no private key in the key file"));
            key = (PrivateKey) p12.getKey(alias, secret("ECDI_P12_PASSWORD").toCharArray());
            cert = (X509Certificate) p12.getCertificate(alias);
        } catch (IOException | GeneralSecurityException e) {
            // SIG-13: no key, no message — never an unsigned fallback (SEC-03); the user learns why.
            throw new Stop("local-error", "local-error", "SIG-13", "The message could not be signed: the key file "
                    + "could not be opened (wrong password or damaged file: " + e.getMessage() + "). Nothing was sent.");
        }
        checkCertificate(cert);                                                               // SIG-12
        Document doc = parse(unsigned.getBytes(StandardCharsets.UTF_8));
        XMLSignatureFactory f = XMLSignatureFactory.getInstance("DOM");
        Reference ref = f.newReference("", f.newDigestMethod(DigestMethod.SHA256, null),
                List.of(f.newTransform(Transform.ENVELOPED, (TransformParameterSpec) null),
                        f.newTransform(CanonicalizationMethod.EXCLUSIVE, (TransformParameterSpec) null)), null, null);
        SignedInfo si = f.newSignedInfo(
                f.newCanonicalizationMethod(CanonicalizationMethod.EXCLUSIVE, (C14NMethodParameterSpec) null),
                f.newSignatureMethod(RSA_SHA256, null), List.of(ref));
        KeyInfoFactory kif = f.getKeyInfoFactory();
        DOMSignContext ctx = new DOMSignContext(key, doc.getDocumentElement());              // enveloped, last child
        ctx.setDefaultNamespacePrefix("ds");
        f.newXMLSignature(si, kif.newKeyInfo(List.of(kif.newX509Data(List.of(cert))))).sign(ctx);
        Transformer t = TransformerFactory.newInstance().newTransformer();
        t.setOutputProperty(OutputKeys.OMIT_XML_DECLARATION, "yes");
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.write("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n".getBytes(StandardCharsets.UTF_8));
        t.transform(new DOMSource(doc), new StreamResult(body));
        return body.toByteArray();                                                          // SIG-02: sent as is
    }

    static boolean isKey(KeyStore ks, String alias) {
        try { return ks.isKeyEntry(alias); } catch (KeyStoreException e) { return false; }
    }

    // ---------------------------------------------------------------------------------------------
    // Sending (TRN, REL)

    /** One send operation: attempts with t_send timeout and backoff (REL-01..07), the same octets each time. */
    Reply sendOperation(byte[] text, String messageId, String submission, String type, boolean isQuery) throws Exception {
        byte[] soap = soap(text);
        int retries = (int) pixit("n_retry");
        for (int k = 0; ; k++) {
            long started = System.currentTimeMillis();
            lastAttemptStart = started;
            if (!isQuery)                                    // REL-08: a later query waits T_send after this
                Files.writeString(work.resolve("messages").resolve(messageId + ".last-attempt"), Long.toString(started));
            journal("attempt", messageId, submission, null);
            String problem;
            double retryAfter = 0;
            try {
                HttpResponse<byte[]> resp = attempt(soap, started);
                int status = resp.statusCode();
                if (status == 200) {
                    byte[] replyText = sendResult(resp.body());
                    if (replyText != null) {
                        journal("attempt-outcome", messageId, submission, "reply");
                        Reply r;
                        try {
                            r = verify(replyText, isQuery ? submission : messageId, type, submission);
                        } catch (Malformed m) {
                            if (isQuery) return null;                                     // RPL-07: discarded
                            throw m;
                        }
                        if (!(r.transient_() && (r.codes().contains("E9001") || r.codes().contains("E9002")))) return r;
                        problem = "gateway busy (" + r.codes() + ")";
                        if (r.codes().contains("E9002")) retryAfter = seconds(T_POLL_MIN) / 1000.0;
                    } else problem = "the response is not a SOAP SendResponse";
                } else if (status == 429 || status >= 502) {
                    problem = "HTTP " + status;
                    retryAfter = resp.headers().firstValue("Retry-After").map(Double::parseDouble).orElse(0.0);
                } else {
                    journal("attempt-outcome", messageId, submission, "HTTP " + status);
                    throw new Stop("transport-error", "transport-error", "HTTP" + status,
                            "The gateway answered HTTP " + status + "; the message was not processed.");
                }
            } catch (Malformed e) {                                                               // RPL-07, REL-03
                problem = e.getMessage();
            } catch (SSLHandshakeException e) {                                                  // TRN-10: no retry
                journal("attempt-outcome", messageId, submission, "TLS verification failed");
                throw new Stop("security-error", "security-error", "TRN-10",
                        "The gateway's TLS certificate could not be verified: " + e.getMessage());
            } catch (IOException e) {
                problem = e instanceof HttpTimeoutException ? "timeout" : "connection failed: " + e.getMessage();
            }
            journal("attempt-outcome", messageId, submission, problem);
            if (k >= retries) {                                                                   // REL-07
                throw new Stop("unknown", "transport-error", "REL-07",
                        "No answer from customs after " + (k + 1) + " attempts (" + problem + "): the outcome is "
                        + "unknown. Query it before sending anything new for this document.");
            }
            double backoff = Math.min(pixit("backoff_max_s"), pixit("backoff_base_s") * Math.pow(2, k)) * scale
                    * (1 + 0.10 * Math.random());                     // REL-06: jitter, well inside +20 %
            long wait = Math.max((long) (backoff * 1000), (long) (retryAfter * 1000));
            long earliest = isQuery ? started + seconds(T_POLL_MIN) : 0;                          // REL-06 for queries
            sleepUntil(Math.max(System.currentTimeMillis() + wait, earliest));
        }
    }

    /**
     * One attempt, abandoned t_send after it started (REL-01). The clock starts when the connection is
     * ready and the request is about to be written: a cold JVM spends a noticeable part of a second in
     * its first TLS handshake, which at a small time_scale would otherwise eat the whole t_send.
     */
    HttpResponse<byte[]> attempt(byte[] soap, long started) throws IOException, InterruptedException {
        long[] writing = {0};
        HttpRequest.BodyPublisher bytes = HttpRequest.BodyPublishers.ofByteArray(soap);
        HttpRequest.BodyPublisher timed = new HttpRequest.BodyPublisher() {
            public long contentLength() { return bytes.contentLength(); }
            public void subscribe(java.util.concurrent.Flow.Subscriber<? super java.nio.ByteBuffer> s) {
                synchronized (writing) { writing[0] = System.currentTimeMillis(); writing.notifyAll(); }
                bytes.subscribe(s);
            }
        };
        HttpRequest req = HttpRequest.newBuilder(URI.create(opt.get("endpoint")))
                .header("Content-Type", "text/xml; charset=utf-8")
                .header("SOAPAction", "\"urn:ecdi:service:1#Send\"")                           // TRN-03
                .POST(timed).build();
        var future = http.sendAsync(req, HttpResponse.BodyHandlers.ofByteArray());
        long tSend = seconds(pixit("t_send_s"));
        try {
            synchronized (writing) {
                while (writing[0] == 0 && !future.isDone() && System.currentTimeMillis() < started + tSend)
                    writing.wait(Math.max(1, Math.min(50, started + tSend - System.currentTimeMillis())));
            }
            long from = writing[0] == 0 ? started : writing[0];
            return future.get(Math.max(1, from + tSend - System.currentTimeMillis()), java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            future.cancel(true);
            throw new HttpTimeoutException("no complete response within t_send");
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof IOException io) throw io;
            throw new IOException(e.getCause());
        }
    }

    byte[] soap(byte[] text) {
        return ("<soap:Envelope xmlns:soap=\"" + SOAP + "\"><soap:Body><svc:Send xmlns:svc=\"" + SVC + "\">"
                + "<svc:MessageXML>" + escape(new String(text, StandardCharsets.UTF_8)) + "</svc:MessageXML>"
                + "<svc:UserId>" + escape(opt.get("user-id")) + "</svc:UserId>"
                + "<svc:Password>" + escape(secret("ECDI_PASSWORD")) + "</svc:Password>"           // TRN-11
                + "</svc:Send></soap:Body></soap:Envelope>").getBytes(StandardCharsets.UTF_8);
    }

    static byte[] sendResult(byte[] body) {
        try {
            Document d = parse(body);
            NodeList nl = d.getElementsByTagNameNS(SVC, "SendResult");
            return nl.getLength() == 1 ? nl.item(0).getTextContent().getBytes(StandardCharsets.UTF_8) : null;
        } catch (Exception e) {
            return null;
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Replies: hardened parse, signature against cgw_sign_anchor (SIG-15), correlation (SEC-04)

    Reply verify(byte[] text, String expectedReference, String type, String submission) throws Exception {
        Reply r;
        Document doc;
        try {                                                                             // RPL-07: malformed
            if (text.length > S_MAX) throw new IllegalArgumentException("larger than S_max");
            doc = parse(text);
            if (depth(doc.getDocumentElement()) > 64)                                     // SEC-05: Envelope = 1
                throw new IllegalArgumentException("nested deeper than 64 elements");
        } catch (Exception e) {
            journal("reply-discarded", null, submission, null);
            throw new Malformed("malformed reply: " + e.getMessage());
        }
        try {
            checkSignature(doc);
        } catch (Exception e) {
            journal("reply-discarded", null, submission, null);
            throw new Stop("security-error", "security-error", "SIG-15",
                    "A reply from the gateway failed verification and was ignored: " + e.getMessage());
        }
        try {                                                                             // RPL-07: a required
            r = Reply.of(doc);                                                            // element missing or
        } catch (RuntimeException e) {                                                    // of the wrong type
            journal("reply-discarded", null, submission, null);
            throw new Malformed("malformed reply: " + e);
        }
        journal("reply-received", r.messageId, submission, null);
        boolean placeholder = r.function.equals("271") && r.reference.isEmpty();
        if (!placeholder && (!r.reference.equals(expectedReference) || !r.toIdentity.equals(opt.get("tax-code"))
                || !r.type.equals(type) || !r.version.equals(opt.get("profile").replaceFirst("^ecdi-", "")))) {
            throw new Stop("security-error", "security-error", "SEC-04",
                    "A reply that does not answer our request was discarded (forged or misrouted).");
        }
        return r;
    }

    void checkSignature(Document doc) throws Exception {
        NodeList sigs = doc.getElementsByTagNameNS(XMLSignature.XMLNS, "Signature");
        if (sigs.getLength() != 1 || sigs.item(0).getParentNode() != doc.getDocumentElement())
            throw new GeneralSecurityException("not exactly one enveloped ds:Signature");
        List<X509Certificate> chain = new ArrayList<>();
        DOMValidateContext ctx = new DOMValidateContext(new KeySelector() {
            public KeySelectorResult select(KeyInfo ki, Purpose p, AlgorithmMethod m, XMLCryptoContext c) throws KeySelectorException {
                for (Object o : ki.getContent())
                    if (o instanceof X509Data x) for (Object d : x.getContent())
                        if (d instanceof X509Certificate cert) chain.add(cert);
                if (chain.isEmpty()) throw new KeySelectorException("no X509Certificate in KeyInfo");
                return () -> chain.get(0).getPublicKey();
            }
        }, sigs.item(0));
        XMLSignature sig = XMLSignatureFactory.getInstance("DOM").unmarshalXMLSignature(ctx);
        SignedInfo si = sig.getSignedInfo();
        Reference ref = (Reference) si.getReferences().get(0);
        if (!si.getSignatureMethod().getAlgorithm().equals(RSA_SHA256) || si.getReferences().size() != 1
                || !"".equals(ref.getURI()) || !ref.getDigestMethod().getAlgorithm().equals(DigestMethod.SHA256)
                || !si.getCanonicalizationMethod().getAlgorithm().equals(CanonicalizationMethod.EXCLUSIVE))
            throw new GeneralSecurityException("signature not per Table 8-1");
        if (!sig.validate(ctx)) throw new GeneralSecurityException("content altered (signature does not verify)");
        Date signedAt = Date.from(OffsetDateTime.parse(text(doc.getDocumentElement(), "createMessageIssue")).toInstant());
        X509Certificate anchor = (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(Files.newInputStream(Paths.get(opt.get("sign-anchor"))));
        X509Certificate current = chain.get(0);
        try {
            current.checkValidity(signedAt);
        } catch (java.security.cert.CertificateExpiredException e) {                    // SIG-15: name the cause
            throw new GeneralSecurityException("gateway certificate expired at the reply's createMessageIssue");
        } catch (java.security.cert.CertificateNotYetValidException e) {
            throw new GeneralSecurityException("gateway certificate not yet valid at the reply's createMessageIssue");
        }
        if (current.getKeyUsage() == null || !current.getKeyUsage()[0])
            throw new GeneralSecurityException("gateway certificate lacks digitalSignature");
        for (int depth = 0; depth < chain.size(); depth++) {                          // up to cgw_sign_anchor only
            if (current.getIssuerX500Principal().equals(anchor.getSubjectX500Principal())) {
                current.verify(anchor.getPublicKey());
                return;
            }
            X509Certificate issuer = null;
            for (X509Certificate c : chain)
                if (c.getSubjectX500Principal().equals(current.getIssuerX500Principal())) issuer = c;
            if (issuer == null) break;
            current.verify(issuer.getPublicKey());
            issuer.checkValidity(signedAt);
            current = issuer;
        }
        throw new GeneralSecurityException("gateway certificate untrusted (not issued under cgw_sign_anchor)");
    }

    static final class Reply {
        String messageId, function, reference, toIdentity, type, version, reception, declaration, channel;
        int sequence;
        final List<String[]> errors = new ArrayList<>(), warnings = new ArrayList<>();

        static Reply of(Document doc) {
            Element root = doc.getDocumentElement();
            Reply r = new Reply();
            r.messageId = text(root, "messageId");
            r.function = text(first(root, "Subject"), "function");
            r.reference = text(first(root, "Subject"), "reference");
            r.type = text(first(root, "Subject"), "type");
            r.version = text(first(root, "Reference"), "version");
            r.toIdentity = text(first(root, "To"), "identity");
            Element result = first(root, "Result");
            r.sequence = Integer.parseInt(text(result, "sequence"));
            r.reception = textOrNull(result, "receptionNumber");
            r.declaration = textOrNull(result, "declarationNumber");
            r.channel = textOrNull(result, "channel");
            NodeList nl = result.getElementsByTagNameNS(ENV, "Error");
            for (int i = 0; i < nl.getLength(); i++) {
                Element e = (Element) nl.item(i);
                String[] entry = {text(e, "code"), text(e, "field"), text(e, "description")};
                (entry[0].startsWith("W") ? r.warnings : r.errors).add(entry);
            }
            return r;
        }

        boolean transient_() { return sequence == 0; }

        List<String> codes() {
            List<String> out = new ArrayList<>();
            for (String[] e : errors) out.add(e[0]);
            return out;
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Telling the user, and the journal (SEC-06, SEC-09, RPL-14)

    void showErrors(Reply r, String code, String summary, String submission) {
        tell("customs-error", code, summary, submission, r.messageId);
        for (String[] e : r.errors) {
            errors.add(errorJson(e));
            tell("customs-error", e[0], render(e), submission, r.messageId);                   // verbatim
        }
    }

    static String render(String[] e) {
        return e[0] + (e[1].isEmpty() ? "" : " — " + e[1]) + ": " + e[2];
    }

    void tell(String kind, String code, String text, String submission, String messageId) {
        String n = "{\"kind\":" + q(kind) + ",\"code\":" + q(code) + ",\"text\":" + q(text) + "}";
        notifications.add(n);
        appendJournal("notification", messageId != null ? messageId : submission, submission,
                ",\"kind\":" + q(kind) + ",\"code\":" + q(code) + ",\"text\":" + q(text));
    }

    void journal(String event, String messageId, String submission, String outcome) {
        appendJournal(event, messageId, submission, outcome == null ? "" : ",\"outcome\":" + q(outcome));
    }

    void appendJournal(String event, String messageId, String submission, String extra) {
        String line = "{\"time\":" + q(OffsetDateTime.now(VN).toString()) + ",\"user\":\"operator\",\"userId\":"
                + q(opt.get("user-id")) + ",\"messageId\":" + q(messageId) + ",\"submission\":" + q(submission)
                + ",\"event\":" + q(event) + extra + "}\n";
        try {
            Files.writeString(work.resolve("journal.jsonl"), line, StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String errorJson(String[] e) {
        return "{\"code\":" + q(e[0]) + ",\"field\":" + q(e[1]) + ",\"description\":" + q(e[2]) + "}";
    }

    String json(String action, Outcome o) {
        return "{\"action\":" + q(action) + ",\"state\":" + q(o.state) + ",\"message_id\":" + q(o.messageId)
                + ",\"status_function\":" + q(o.statusFunction) + ",\"reception_number\":" + q(o.reception)
                + ",\"declaration_number\":" + q(o.declaration) + ",\"channel\":" + q(o.channel)
                + ",\"errors\":[" + String.join(",", errors) + "],\"warnings\":[" + String.join(",", warnings)
                + "],\"notifications\":[" + String.join(",", notifications) + "],\"raised\":null}";
    }

    static final class Outcome {
        String state, messageId, statusFunction, reception, declaration, channel;
        Outcome(String state) { this.state = state; }
    }

    /**
     * SIG-12, before signing: validity, key usage and size, the UID=MST: tax code for From/identity and,
     * when the issuing CA's CRL is reachable (fetched from the certificate's HTTP distribution points),
     * revocation. A failure sends nothing and names the cause (SEC-09: a local error).
     */
    void checkCertificate(X509Certificate cert) throws Exception {
        try {
            cert.checkValidity();
        } catch (CertificateExpiredException e) {
            throw unfit("expired", "notAfter " + cert.getNotAfter().toInstant());
        } catch (CertificateNotYetValidException e) {
            throw unfit("not yet valid", "notBefore " + cert.getNotBefore().toInstant());
        }
        boolean[] usage = cert.getKeyUsage();
        if (usage == null || !(usage[0] || usage[1]))
            throw unfit("unsuitable key", "keyUsage lacks digitalSignature and nonRepudiation");
        if (cert.getPublicKey() instanceof java.security.interfaces.RSAPublicKey rsa && rsa.getModulus().bitLength() < 2048)
            throw unfit("unsuitable key", "RSA key of " + rsa.getModulus().bitLength() + " bits (at least 2048)");
        Matcher uid = Pattern.compile("(?:^|,)UID=MST:([0-9]{10}(?:-[0-9]{3})?)(?:,|$)")
                .matcher(cert.getSubjectX500Principal().getName(javax.security.auth.x500.X500Principal.RFC2253));
        String from = opt.get("tax-code");
        if (!uid.find() || !(from.equals(uid.group(1)) || from.matches(Pattern.quote(uid.group(1)) + "-[0-9]{3}")))
            throw unfit("wrong tax code", "the certificate's UID=MST: does not cover tax code " + from);
        for (String url : crlUrls(cert)) {
            X509CRL crl;
            try {
                HttpResponse<byte[]> got = http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5))
                        .GET().build(), HttpResponse.BodyHandlers.ofByteArray());
                if (got.statusCode() != 200) continue;
                crl = (X509CRL) CertificateFactory.getInstance("X.509").generateCRL(new ByteArrayInputStream(got.body()));
            } catch (IOException | CRLException | IllegalArgumentException e) {
                continue;                                     // not reachable now: SIG-12 skips the check
            }
            if (crl.getIssuerX500Principal().equals(cert.getIssuerX500Principal()) && crl.isRevoked(cert))
                throw unfit("revoked", "listed in the CRL at " + url);
        }
    }

    /** The certificate's HTTP(S) CRL distribution points. */
    static List<String> crlUrls(X509Certificate cert) {
        List<String> urls = new ArrayList<>();
        byte[] ext = cert.getExtensionValue("2.5.29.31");             // cRLDistributionPoints
        if (ext == null) return urls;
        Matcher url = Pattern.compile("https?://[\\x21-\\x7e]+").matcher(new String(ext, StandardCharsets.ISO_8859_1));
        while (url.find()) urls.add(url.group());
        return urls;
    }

    static Stop unfit(String cause, String detail) {
        return new Stop("refused", "local-error", "SIG-12",
                "The signing certificate cannot be used: " + cause + " (" + detail + "). Nothing was sent.");
    }

    /** RPL-07: a reply that is not well-formed, has a DOCTYPE or lacks a required element: never acted on;
     *  to a submission it is retryable (REL-03), to a query it is discarded and polling continues. */
    static final class Malformed extends Exception {
        Malformed(String text) { super(text); }
    }

    static final class Stop extends Exception {
        final String state, kind, code;
        Stop(String state, String kind, String code, String text) {
            super(text);
            this.state = state; this.kind = kind; this.code = code;
        }
    }

    /** Just enough JSON for the server mode's requests (the JDK has no parser): objects, arrays, strings,
     *  numbers (kept as text), true, false, null. */
    static final class Json {
        final String s;
        int i;

        Json(String s) { this.s = s; }

        static Map<String, Object> object(String text) {
            Json p = new Json(text);
            Map<String, Object> value = map(p.value());
            p.space();
            if (p.i != p.s.length()) throw p.error("trailing text");
            return value;
        }

        @SuppressWarnings("unchecked")
        static Map<String, Object> map(Object value) {
            if (!(value instanceof Map)) throw new IllegalArgumentException("a JSON object was expected");
            return (Map<String, Object>) value;
        }

        Object value() {
            space();
            char c = i < s.length() ? s.charAt(i) : '\0';
            if (c == '{') {
                Map<String, Object> m = new LinkedHashMap<>();
                i++;
                space();
                if (peek('}')) return m;
                do {
                    space();
                    String key = string();
                    space();
                    expect(':');
                    m.put(key, value());
                    space();
                } while (peek(','));
                expect('}');
                return m;
            }
            if (c == '[') {
                List<Object> l = new ArrayList<>();
                i++;
                space();
                if (peek(']')) return l;
                do { l.add(value()); space(); } while (peek(','));
                expect(']');
                return l;
            }
            if (c == '"') return string();
            for (String word : List.of("true", "false", "null"))
                if (s.startsWith(word, i)) { i += word.length(); return word.equals("null") ? null : Boolean.valueOf(word); }
            int from = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
            if (from == i) throw error("unexpected character");
            return s.substring(from, i);
        }

        String string() {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (true) {
                if (i >= s.length()) throw error("unterminated string");
                char c = s.charAt(i++);
                if (c == '"') return b.toString();
                if (c != '\\') { b.append(c); continue; }
                char e = s.charAt(i++);
                switch (e) {
                    case 'n' -> b.append('\n');
                    case 'r' -> b.append('\r');
                    case 't' -> b.append('\t');
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'u' -> { b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; }
                    default -> b.append(e);                                   // \" \\ \/
                }
            }
        }

        void space() { while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++; }

        boolean peek(char c) {
            if (i < s.length() && s.charAt(i) == c) { i++; return true; }
            return false;
        }

        void expect(char c) { if (!peek(c)) throw error("'" + c + "' expected"); }

        IllegalArgumentException error(String what) {
            return new IllegalArgumentException("request is not JSON: " + what + " at offset " + i);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Small helpers

    static Document parse(byte[] xml) throws Exception {                                      // SEC-05
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
        f.setXIncludeAware(false);
        f.setExpandEntityReferences(false);
        return f.newDocumentBuilder().parse(new ByteArrayInputStream(xml));
    }

    static int depth(Element e) {                                                            // SEC-05
        int deepest = 0;
        for (org.w3c.dom.Node c = e.getFirstChild(); c != null; c = c.getNextSibling())
            if (c instanceof Element) deepest = Math.max(deepest, depth((Element) c));
        return 1 + deepest;
    }

    static Element first(Element parent, String local) {
        return (Element) parent.getElementsByTagNameNS(ENV, local).item(0);
    }

    static String text(Element parent, String local) {
        return first(parent, local).getTextContent();
    }

    static String textOrNull(Element parent, String local) {
        Element e = first(parent, local);
        return e == null ? null : e.getTextContent();
    }

    static String element(String name, String value) {
        return "<" + name + ">" + escape(value) + "</" + name + ">";
    }

    static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;");
    }

    static String q(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    String secret(String name) {
        String value = secrets.get(name);
        if (value == null) throw new IllegalStateException(name + " is not set (passwords come from the environment)");
        return value;
    }

    double pixit(String key) {
        return Double.parseDouble(statement.get("pixit." + key));
    }

    long seconds(double s) {
        return (long) (s * scale * 1000);
    }

    static void sleepUntil(long epochMillis) throws InterruptedException {
        long left = epochMillis - System.currentTimeMillis();
        if (left > 0) Thread.sleep(left);
    }

    String installationId() {                                                                   // ENV-07
        try {
            Path file = work.resolve("installation-id");
            if (!Files.exists(file)) Files.writeString(file, UUID.randomUUID().toString());
            return Files.readString(file).trim();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * A cold JVM needs about half a second for its first TLS handshake. This verified handshake (no HTTP
     * data is sent) happens before any attempt's t_send clock starts, so that REL-01 timing measures the
     * gateway, not the JVM's start-up; a failure here is left to the real attempt to report (TRN-10).
     */
    static void warmUp(SSLContext tls, URI endpoint) {
        try (SSLSocket socket = (SSLSocket) tls.getSocketFactory().createSocket(endpoint.getHost(), endpoint.getPort())) {
            SSLParameters p = tlsParameters();
            p.setEndpointIdentificationAlgorithm("HTTPS");
            socket.setSSLParameters(p);
            socket.setSoTimeout(5000);
            socket.startHandshake();
        } catch (IOException ignored) {
            // the attempt itself reports connection and verification failures
        }
    }

    static SSLParameters tlsParameters() {                                                      // TRN-09
        SSLParameters p = new SSLParameters();
        p.setProtocols(new String[] {"TLSv1.3", "TLSv1.2"});
        return p;
    }

    static SSLContext tlsContext(Path pem) throws Exception {                                   // TRN-10, CAP-07
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        int i = 0;
        try (InputStream in = Files.newInputStream(pem)) {
            for (java.security.cert.Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in))
                trust.setCertificateEntry("anchor-" + i++, c);
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        return ctx;
    }

    /** The top-level and [pixit] strings and integers of ecdi-conformance.toml (enough for this example). */
    static Map<String, String> readStatement(Path file) throws IOException {
        Map<String, String> out = new HashMap<>();
        Pattern kv = Pattern.compile("^([a-z_]+)\\s*=\\s*(?:\"([^\"]*)\"|([0-9]+))\\s*$");
        String table = "";
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (line.startsWith("[")) { table = line.replaceAll("[\\[\\]\\s]", "") + "."; continue; }
            Matcher m = kv.matcher(line.trim());
            if (m.matches()) out.put(table + m.group(1), m.group(2) != null ? m.group(2) : m.group(3));
        }
        return out;
    }
}
