/**
 * Deep links that configure a chat client with a token, as One API's token list offers them.
 * `server` is ServerAddress from /api/status, or this page's origin when the operator left it
 * empty. Keys are shown as `sk-` + the stored key.
 */
import type { Status } from "@/api/types";

export interface ChatClient {
  id: string;
  name: string;
  link: (key: string, server: string, chatLink: string) => string;
}

export function displayKey(key: string): string {
  return `sk-${key}`;
}

export function serverAddress(status: Status | null): string {
  return (status?.server_address || window.location.origin).replace(/\/+$/, "");
}

export const CHAT_CLIENTS: ChatClient[] = [
  {
    id: "next",
    name: "ChatGPT Next Web",
    link: (key, server, chatLink) =>
      `${(chatLink || "https://app.nextchat.dev").replace(/\/+$/, "")}/#/?settings={"key":"${displayKey(key)}","url":"${encodeURIComponent(server)}"}`,
  },
  {
    id: "lobe",
    name: "Lobe Chat",
    link: (key, server) =>
      `https://chat-preview.lobehub.com/?settings={"keyVaults":{"openai":{"apiKey":"${displayKey(key)}","baseURL":"${server}/v1"}}}`,
  },
  {
    id: "ama",
    name: "AMA 问天",
    link: (key, server) => `ama://set-api-key?server=${encodeURIComponent(server)}&key=${displayKey(key)}`,
  },
  {
    id: "opencat",
    name: "OpenCat",
    link: (key, server) => `opencat://team/join?domain=${encodeURIComponent(server)}&token=${displayKey(key)}`,
  },
];
