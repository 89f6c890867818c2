/**
 * Operator-written Markdown (Notice, HomePageContent, About), rendered and sanitized by
 * DOMPurify: no scripts, no event handlers, no iframes; links open in a new tab.
 */
import DOMPurify from "dompurify";
import { marked } from "marked";
import { useMemo } from "react";

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.getAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

export function renderMarkdown(source: string): string {
  const html = marked.parse(source, { async: false, gfm: true, breaks: true });
  return DOMPurify.sanitize(html, { USE_PROFILES: { html: true } });
}

/** Sanitizes operator HTML (the footer) without Markdown. */
export function sanitizeHtml(source: string): string {
  return DOMPurify.sanitize(source, { USE_PROFILES: { html: true } });
}

export function Markdown({ source, className = "" }: { source: string; className?: string }) {
  const html = useMemo(() => renderMarkdown(source), [source]);
  return <div className={`markdown ${className}`} dangerouslySetInnerHTML={{ __html: html }} />;
}
