// A typed connection to one Tandem server as one caller (one bearer token).
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import { ClientError, GraphQLClient } from "graphql-request";
import { createClient, type Client as SocketClient } from "graphql-ws";
import WebSocket from "ws";

/** A GraphQL error as Tandem gives it: a sentence and a stable code to branch on. */
export class TandemError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = "TandemError";
  }
}

export class Tandem {
  private readonly http: GraphQLClient;
  private socket: SocketClient | undefined;

  /** `url` is the GraphQL endpoint, such as http://127.0.0.1:8080/graphql. */
  constructor(
    private readonly url: string,
    private readonly token: string,
  ) {
    this.http = new GraphQLClient(url, {
      headers: { authorization: `Bearer ${token}` },
    });
  }

  /** Sends a query or mutation; GraphQL errors become a TandemError with the first code. */
  async request<Result, Variables extends object>(
    document: TypedDocumentNode<Result, Variables>,
    ...variables: Variables extends Record<string, never> ? [] : [Variables]
  ): Promise<Result> {
    try {
      return await this.http.request<Result>({
        document,
        variables: variables[0] as Variables,
      });
    } catch (error) {
      if (error instanceof ClientError && error.response.errors?.length) {
        const first = error.response.errors[0]!;
        const code = first.extensions?.["code"];
        throw new TandemError(first.message, typeof code === "string" ? code : "UNKNOWN");
      }
      throw error;
    }
  }

  /**
   * Follows a subscription over graphql-transport-ws on the same endpoint. The token travels in
   * `connection_init`, as browsers cannot set headers on a WebSocket. Returns a function that
   * ends the subscription.
   */
  subscribe<Result>(
    document: TypedDocumentNode<Result, Record<string, never>>,
    onEvent: (event: Result) => void,
    onError: (error: unknown) => void,
  ): () => void {
    this.socket ??= createClient({
      url: this.url.replace(/^http/, "ws"),
      webSocketImpl: WebSocket,
      connectionParams: { token: this.token },
      lazy: true,
      retryAttempts: 0,
    });
    return this.socket.subscribe<Result>(
      { query: print(document) },
      {
        next: (message) => {
          if (message.errors?.length) {
            const first = message.errors[0]!;
            onError(new TandemError(first.message, String(first.extensions?.["code"] ?? "UNKNOWN")));
          } else if (message.data) {
            onEvent(message.data);
          }
        },
        error: onError,
        complete: () => {},
      },
    );
  }

  /** Closes the WebSocket, if one was opened. */
  async close(): Promise<void> {
    await this.socket?.dispose();
  }
}
