import GateCore
import NIOHTTP1

/// A response of the ticket node's API: a status and a small JSON body.
///
/// Bodies are built by string interpolation from a fixed shape, not by a JSON encoder: every
/// value is a number, a fixed word, or passed through `jsonString` (user input) — and the order
/// record, which the sale's script wrote with cjson.
struct TicketResponse: Sendable {
    var status: HTTPResponseStatus
    /// The body's `code` (for the stat log); 1 for plain successful answers.
    var code: Int
    var body: String
    /// Seconds to wait before asking again (`Retry-After`), for answers that say "later".
    var retryAfter: Int?

    static func json(_ status: HTTPResponseStatus, code: Int = 1, _ body: String, retryAfter: Int? = nil) -> TicketResponse {
        TicketResponse(status: status, code: code, body: body, retryAfter: retryAfter)
    }

    static func error(_ status: HTTPResponseStatus, code: Int, _ message: String) -> TicketResponse {
        .json(status, code: code, "{\"code\":\(code),\"msg\":\(jsonString(message))}")
    }

    static let soldOut = TicketResponse.json(.ok, code: -1, "{\"code\":-1,\"msg\":\"sold out\"}")
}
