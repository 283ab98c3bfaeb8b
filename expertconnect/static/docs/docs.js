// Swagger UI over this server's own OpenAPI document. In a file of its own: the page's
// Content-Security-Policy allows no inline script.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  window.ui = window.SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // The document's `servers: [{url: /}]` makes "Try it out" call this same server.
    tryItOutEnabled: false,
    // Never send the document to validator.swagger.io: nothing leaves this origin.
    validatorUrl: null,
    // The token stays for the tab (Authorize -> bearerAuth), like the web client's.
    persistAuthorization: false,
    displayRequestDuration: true,
    docExpansion: "list",
  });
});
