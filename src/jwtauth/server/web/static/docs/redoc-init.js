// Starts ReDoc on /redoc. It lives in this file rather than in an inline <script> so that
// the page's Content-Security-Policy can refuse every inline script (web/docs.py).
"use strict";

(function () {
  var root = document.getElementById("redoc");
  // ReDoc builds its styles at run time; the nonce of this answer lets them apply.
  Redoc.init(root.dataset.openapiUrl, { nonce: root.dataset.nonce }, root);
})();
