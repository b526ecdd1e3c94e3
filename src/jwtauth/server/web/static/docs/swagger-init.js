// Starts Swagger UI on /docs. It lives in this file rather than in an inline <script> so that
// the page's Content-Security-Policy can refuse every inline script (web/docs.py).
"use strict";

(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis],
    // The default validator is a third-party service: the page talks to this server only.
    validatorUrl: null,
    // A bearer token typed into "Authorize" stays in memory; persisting it would put an
    // access token in localStorage, which is what this project exists to avoid.
    persistAuthorization: false,
  });
})();
