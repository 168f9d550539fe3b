// After load: how many of the page's images rendered, as data attributes of <body> (read by tests/test_reliability_docs.py).
window.addEventListener('load', () => {
  const im = [...document.querySelectorAll('img')];
  const ok = im.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.imagesOk = ok; document.body.dataset.images = im.length;
});
